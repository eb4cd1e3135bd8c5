"""The `backend` resource: one switch between self-hosted, hosted and inference-server backends.

Every setting is a config field whose default comes from the environment when the code location
loads (the resource is bound with `configure_at_launch`), so a single run can override any of them
in run config, for example `resources: {backend: {config: {kind: hosted, hosted_fps: 2}}}`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
from pydantic import Field, PrivateAttr

from video_assets.backends.base import BackendError, BackendIdentity, PredictionSink, VideoBackend
from video_assets.backends.self_hosted import DEFAULT_WORKFLOW_FILE, SelfHostedBackend
from video_assets.ingest.probe import VideoProbe
from video_assets.settings import Settings, SettingsError, env_number

KINDS: tuple[str, ...] = ("self_hosted", "hosted", "server")
DEFAULT_API_URL = "https://api.roboflow.com"
DEFAULT_SERVER_URL = "http://localhost:9001"
LEDGER_FILE = "hosted_jobs.sqlite"


class Backend(VideoBackend):
    """Bound as the `backend` resource; `kind` picks the implementation for each run.

    The fields are flat (no nested Config): Dagster keeps partially bound values as run-config
    defaults only for top-level fields, and per-run overrides are the point of this resource.
    """

    # A plain str: Dagster drops configure_at_launch values of Literal fields.
    kind: str = Field(default="self_hosted", description="self_hosted | hosted | server")
    api_key: str | None = Field(default=None, description="ROBOFLOW_API_KEY, bound through dagster.EnvVar.")
    state_dir: str = Field(description="Durable state; the hosted job ledger lives here.")
    # The workflow (self_hosted, server; hosted workflow form): an inline spec file or a saved workflow.
    workflow_file: str = Field(default=DEFAULT_WORKFLOW_FILE, description="Inline workflow spec (JSON).")
    workspace: str | None = Field(default=None, description="Roboflow workspace of a saved workflow.")
    workflow_id: str | None = Field(default=None, description="Saved workflow id.")
    workflow_version_id: str | None = None
    # hosted
    api_url: str = Field(default=DEFAULT_API_URL, description="Base URL of the hosted video API.")
    model: str | None = Field(default=None, description="project/version: the documented models form instead of a workflow.")
    hosted_fps: int = Field(default=5, ge=1, le=120, description="Frames per second the service samples (capped at the video's).")
    poll_seconds: float = Field(default=60.0, gt=0, description="Seconds between job status checks (the API asks for at most one a minute).")
    hosted_timeout_seconds: float = Field(default=6 * 3600.0, gt=0, description="Stop waiting for one job after this long; a re-run resumes it.")
    budget_frames: int | None = Field(default=None, ge=0, description="Refuse a submission that takes all submitted frames above this.")
    force_resubmit: bool = Field(default=False, description="Submit again although the ledger has a job for this video (pays again).")
    request_attempts: int = Field(default=5, ge=1, description="Attempts per HTTP call (429, 5xx, connection errors).")
    backoff_seconds: float = Field(default=2.0, ge=0, description="First retry wait, doubled per attempt (Retry-After wins).")
    request_timeout_seconds: float = Field(default=60.0, gt=0, description="Read timeout of one HTTP call.")
    # server
    server_url: str = Field(default=DEFAULT_SERVER_URL, description="Inference server with the stream API enabled.")
    server_results_buffer_size: int = Field(default=1024, ge=1, description="Results the server may hold for us (each holds a frame).")
    server_timeout_seconds: float = Field(default=3600.0, gt=0, description="Give up on one video after this long.")

    _run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._run_id = context.run_id

    def identity(self) -> BackendIdentity:
        return self.implementation().identity()

    def frames_expected(self, video: VideoProbe) -> int:
        return self.implementation().frames_expected(video)

    def predict(self, video: VideoProbe, sink: PredictionSink, log: logging.Logger) -> None:
        self.implementation().predict(video, sink, log)

    def implementation(self) -> Any:
        if self.kind not in KINDS:
            raise BackendError(f"Backend kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind == "hosted":
            return self.hosted_backend()
        if self.kind == "server":
            from video_assets.backends.server import ServerBackend

            return ServerBackend(
                url=self.server_url,
                workflow=self.self_hosted_backend(),
                results_buffer_size=self.server_results_buffer_size,
                timeout_s=self.server_timeout_seconds,
            )
        return self.self_hosted_backend()

    def self_hosted_backend(self) -> SelfHostedBackend:
        return SelfHostedBackend(
            workflow_file=self.workflow_file,
            workspace=self.workspace,
            workflow_id=self.workflow_id,
            workflow_version_id=self.workflow_version_id,
            api_key=self.api_key,
        )

    def hosted_backend(self) -> Any:
        from video_assets.backends.hosted.backend import HostedBackend, HostedOptions
        from video_assets.backends.hosted.client import RetryPolicy

        options = HostedOptions(
            api_url=self.api_url,
            target=self.hosted_target(),
            fps=self.hosted_fps,
            poll_s=self.poll_seconds,
            timeout_s=self.hosted_timeout_seconds,
            ledger_path=Path(self.state_dir) / LEDGER_FILE,
            budget_frames=self.budget_frames,
            force_resubmit=self.force_resubmit,
            retry=RetryPolicy(
                attempts=self.request_attempts, backoff_s=self.backoff_seconds, read_timeout_s=self.request_timeout_seconds
            ),
        )
        return HostedBackend(self.api_key, options, submitted_by=self._run_id)

    def hosted_target(self) -> Any:
        from video_assets.backends.hosted.contract import Target

        if self.model:
            try:
                return Target.for_model(self.model)
            except ValueError as exc:
                raise BackendError(str(exc)) from None
        if self.workspace and self.workflow_id:
            return Target.for_workflow(self.workspace, self.workflow_id)
        raise BackendError(
            "The hosted backend needs a saved workflow (ROBOFLOW_WORKSPACE and ROBOFLOW_WORKFLOW) or a model "
            "version (ROBOFLOW_MODEL=project/version); an inline workflow file cannot run on the hosted API."
        )


def backend_from_env(env: Mapping[str, str] | None = None, state_dir: Path | None = None) -> Any:
    """The `backend` resource, its defaults read from the environment and overridable per run."""
    return Backend.configure_at_launch(**backend_config_from_env(env, state_dir))


def backend_config_from_env(env: Mapping[str, str] | None = None, state_dir: Path | None = None) -> dict[str, Any]:
    """Every `backend` field that the environment sets (see README, Configuration)."""
    env = os.environ if env is None else env
    kind = (env.get("VIDEO_ASSETS_BACKEND") or "self_hosted").strip().lower().replace("-", "_")
    if kind not in KINDS:
        raise SettingsError(f"VIDEO_ASSETS_BACKEND={env['VIDEO_ASSETS_BACKEND']!r} must be one of {', '.join(KINDS)}")
    config = {
        "kind": kind,
        "state_dir": str(state_dir or Settings.from_env(env).state_dir),
        "workflow_file": env.get("VIDEO_ASSETS_WORKFLOW") or DEFAULT_WORKFLOW_FILE,
        "workspace": env.get("ROBOFLOW_WORKSPACE") or None,
        "workflow_id": env.get("ROBOFLOW_WORKFLOW") or None,
        "workflow_version_id": env.get("ROBOFLOW_WORKFLOW_VERSION") or None,
        "api_url": env.get("ROBOFLOW_API_URL") or DEFAULT_API_URL,
        "model": env.get("ROBOFLOW_MODEL") or None,
        "hosted_fps": env_number(env, "VIDEO_ASSETS_HOSTED_FPS", int, 5),
        "poll_seconds": env_number(env, "VIDEO_ASSETS_POLL_SECONDS", float, 60.0),
        "hosted_timeout_seconds": env_number(env, "VIDEO_ASSETS_HOSTED_TIMEOUT", float, 6 * 3600.0),
        "budget_frames": env_number(env, "VIDEO_ASSETS_HOSTED_BUDGET_FRAMES", int, None, allow_zero=True),
        "server_url": env.get("VIDEO_ASSETS_INFERENCE_SERVER_URL") or DEFAULT_SERVER_URL,
    }
    if env.get("ROBOFLOW_API_KEY"):
        # Only when set: an unset EnvVar fails every run, self-hosted ones too. The value itself is
        # read when a run starts and never stored in the definitions.
        config["api_key"] = dg.EnvVar("ROBOFLOW_API_KEY")
    return config


def configured_kind(resource: Any) -> str:
    """The kind a bound `backend` resource (instance or configure_at_launch partial) defaults to."""
    return getattr(configured_backend(resource), "kind", "self_hosted")


def configured_workflow_version(resource: Any) -> str | None:
    """The workflow version the bound resource runs by default (the code version of frame_predictions).

    None when it cannot be known at load time (an unreadable workflow file fails the run, not the load).
    """
    try:
        return configured_backend(resource).identity().workflow_version
    except (BackendError, AttributeError):
        return None


def configured_backend(resource: Any) -> VideoBackend | None:
    """The backend a bound resource stands for, built from its default values (without the API key)."""
    if isinstance(resource, VideoBackend):
        return resource
    if getattr(resource, "resource_cls", None) is Backend and isinstance(getattr(resource, "data", None), dict):
        return Backend(**{k: v for k, v in resource.data.items() if k != "api_key"})
    return None
