"""The `backend` resource: one switch over the registered backends, every field overridable per run.

Its fields are the union of the registered backends' config fields (flat: Dagster keeps values bound
with `configure_at_launch` as run-config defaults only for top-level fields), so a single run can
choose another kind or change any setting, for example
`resources: {backend: {config: {kind: hosted, hosted_fps: 2}}}`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from video_assets.backends.base import BackendIdentity, BuildContext, PredictionSink, VideoBackend
from video_assets.backends.registry import BACKENDS, DEFAULT_KIND, KINDS, backend_kind
from video_assets.ingest.probe import VideoProbe


class BackendSwitch(dg.ConfigurableResource):
    """The fields every backend shares, and the delegation to the chosen one."""

    # A plain str: Dagster drops configure_at_launch values of Literal fields.
    kind: str = Field(default=DEFAULT_KIND, description=" | ".join(KINDS), json_schema_extra={"env": "VIDEO_ASSETS_BACKEND"})
    api_key: str | None = Field(default=None, description="ROBOFLOW_API_KEY, bound through dagster.EnvVar.")
    state_dir: str = Field(description="Durable state; the hosted job ledger lives here.")

    _run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._run_id = context.run_id

    def build_context(self) -> BuildContext:
        return BuildContext(api_key=self.api_key, state_dir=Path(self.state_dir), run_id=self._run_id)

    def implementation(self) -> VideoBackend:
        return backend_kind(self.kind).build(self, self.build_context())

    def identity(self) -> BackendIdentity:
        return self.implementation().identity()

    def frames_expected(self, video: VideoProbe) -> int:
        return self.implementation().frames_expected(video)

    def predict(self, video: VideoProbe, sink: PredictionSink, log: logging.Logger) -> None:
        self.implementation().predict(video, sink, log)

    def max_runtime_s(self, video: VideoProbe) -> float:
        return self.implementation().max_runtime_s(video)


def _config_bases() -> tuple[type, ...]:
    """Each registered config once, leaving out those another one extends (their fields come with it)."""
    configs = list(dict.fromkeys(kind.config for kind in BACKENDS.values()))
    return tuple(c for c in configs if not any(other is not c and issubclass(other, c) for other in configs))


_CONFIGS = _config_bases()


class Backend(*_CONFIGS, BackendSwitch):  # type: ignore[misc]  # bases come from the registry
    """Bound as the `backend` resource; `kind` picks the implementation for each run."""


def backend_fields() -> dict[str, Any]:
    """Every field of the resource (name -> pydantic FieldInfo), for settings and documentation."""
    return dict(Backend.model_fields)
