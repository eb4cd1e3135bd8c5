"""The `backend` resource: one switch over the registered backends, every field overridable per run.

Its fields are the union of the registered backends' config fields (flat: Dagster keeps values bound
with `configure_at_launch` as run-config defaults only for top-level fields), so a single run can
choose another kind or change any setting, for example
`resources: {backend: {config: {kind: hosted, hosted_fps: 2}}}`.

A drop folder may have its own workflow file (`source_workflows`, VIDEO_ASSETS_SOURCE_WORKFLOWS =
`faces=/path/face_tracking.json`): its videos run that spec instead of `workflow_file`, whoever
launches the run (sensor, backfill, UI), because the choice is made from the video's source.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from video_assets.backends.base import BackendError, BackendIdentity, BuildContext, PredictionSink, VideoBackend
from video_assets.backends.registry import BACKENDS, DEFAULT_KIND, KINDS, backend_kind
from video_assets.ingest.probe import VideoProbe


class BackendSwitch(dg.ConfigurableResource):
    """The fields every backend shares, and the delegation to the chosen one."""

    # A plain str: Dagster drops configure_at_launch values of Literal fields.
    kind: str = Field(
        default=DEFAULT_KIND, description=" | ".join(KINDS), json_schema_extra={"env": "VIDEO_ASSETS_BACKEND"}
    )
    api_key: str | None = Field(default=None, description="ROBOFLOW_API_KEY, bound through dagster.EnvVar.")
    state_dir: str = Field(description="Durable state of this machine; the job ledgers live here on one machine.")
    ledger_postgres: str | None = Field(
        default=None, description="Many machines: the job ledgers' Postgres (libpq keywords, no password)."
    )
    ledger_password_env: str | None = Field(default=None, description="The variable holding that Postgres password.")
    source_workflows: str = Field(
        default="",
        description="Drop folders with their own inline workflow: source=workflow.json, comma separated; "
        "the other sources run workflow_file.",
        json_schema_extra={"env": "VIDEO_ASSETS_SOURCE_WORKFLOWS"},
    )

    _run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._run_id = context.run_id

    def build_context(self) -> BuildContext:
        from video_assets.settings import secret  # settings reads this module's fields: imported when used

        dsn = self.ledger_postgres
        password = secret(self.ledger_password_env) if dsn and self.ledger_password_env else None
        if dsn and password:
            dsn = f"{dsn} password='{password}'"
        return BuildContext(api_key=self.api_key, state_dir=Path(self.state_dir), run_id=self._run_id, ledger_dsn=dsn)

    def implementation(self, source: str | None = None) -> VideoBackend:
        """The backend that runs the videos of `source` (None: a source without its own workflow)."""
        kind = backend_kind(self.kind)
        workflow = parse_source_workflows(self.source_workflows).get(source or "")
        if workflow is None:
            return kind.build(self, self.build_context())
        if not kind.runs_workflow_files:
            raise BackendError(
                f"Videos from {source!r} have their own workflow file ({workflow}, VIDEO_ASSETS_SOURCE_WORKFLOWS), "
                f"which the {kind.name} backend does not run. Use a backend that runs inline workflows "
                f"({', '.join(k for k, b in BACKENDS.items() if b.runs_workflow_files)}), or remove {source!r} from the setting.",
                permanent=True,
            )
        return kind.build(self.model_copy(update={"workflow_file": workflow}), self.build_context())

    def identity(self, source: str | None = None) -> BackendIdentity:
        return self.implementation(source).identity()

    def workflow_versions(self) -> dict[str, str]:
        """The workflow version each source's videos are made with: "" for sources without their own."""
        sources = ["", *parse_source_workflows(self.source_workflows)]
        return {source: self.identity(source).workflow_version for source in sources}

    def frames_expected(self, video: VideoProbe) -> int:
        return self.implementation(video.source).frames_expected(video)

    def predict(self, video: VideoProbe, sink: PredictionSink, log: logging.Logger) -> None:
        self.implementation(video.source).predict(video, sink, log)

    def max_runtime_s(self, video: VideoProbe) -> float:
        return self.implementation(video.source).max_runtime_s(video)


def parse_source_workflows(text: str) -> dict[str, str]:
    """`faces=/a/face.json,dock=/b/dock.json` -> {source: workflow file}; malformed text is a BackendError."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        source, sep, workflow = (p.strip() for p in item.partition("="))
        if not sep or not source or not workflow or source in mapping:
            raise BackendError(
                f"VIDEO_ASSETS_SOURCE_WORKFLOWS entry {item!r} is not a new source=workflow.json pair "
                "(for example: faces=/srv/workflows/face_tracking.json,dock=/srv/workflows/forklifts.json)",
                permanent=True,
            )
        mapping[source] = workflow
    return mapping


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
