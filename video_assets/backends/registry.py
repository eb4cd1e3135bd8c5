"""The backends, in one table. Adding one is a module (its config fields, its VideoBackend, its `KIND`)
plus one entry here: the `backend` resource's fields, the kinds users may choose, the environment
variables read for them and the `backend` data test of the SQL models all derive from this table.
"""

from __future__ import annotations

from video_assets.backends import self_hosted, server
from video_assets.backends.base import BackendError, BackendKind
from video_assets.backends.batch import backend as batch
from video_assets.backends.hosted import backend as hosted

BACKENDS: dict[str, BackendKind] = {
    kind.name: kind for kind in (self_hosted.KIND, hosted.KIND, server.KIND, batch.KIND)
}
KINDS: tuple[str, ...] = tuple(BACKENDS)
DEFAULT_KIND = self_hosted.KIND.name


def backend_kind(name: str) -> BackendKind:
    try:
        return BACKENDS[name]
    except KeyError:
        raise BackendError(f"Backend kind {name!r} is not one of {', '.join(KINDS)}", permanent=True) from None
