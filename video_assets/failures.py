"""What a failed video means to Dagster: one error type, one conversion, one flag for "retrying will not help".

Every asset that processes one video (or camera hour) raises a `VideoError` subclass when that item
cannot be processed; `as_failure` turns it into the `dagster.Failure` that fails only its partition.
A *permanent* failure (an unreadable file, a paid job that needs a person) is neither retried by the
step's RetryPolicy nor by the nightly backfill, which reads the flag back with `is_permanent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

PERMANENT = "permanent"  # metadata key on the Failure


class VideoError(Exception):
    """Processing one video failed. The message names the file and what to do about it."""

    permanent_by_default = False

    def __init__(self, message: str, permanent: bool | None = None):
        super().__init__(message)
        self.permanent = self.permanent_by_default if permanent is None else permanent


def as_failure(exc: VideoError, **metadata: Any) -> dg.Failure:
    """The Failure for `exc`: retried with backoff unless permanent."""
    return dg.Failure(
        description=str(exc),
        allow_retries=not exc.permanent,
        metadata={**metadata, PERMANENT: exc.permanent},
    )


def is_permanent(metadata: Mapping[str, Any]) -> bool:
    """Whether a recorded failure's metadata says no retry can help."""
    flag = metadata.get(PERMANENT)
    return bool(getattr(flag, "value", flag))
