"""Self-hosted backend: `inference`'s InferencePipeline running a Roboflow Workflow in the run process.

The workflow is either an inline spec file (the shipped ones need no downloaded weights: motion
tracking, the default, and face tracking with OpenCV's Haar cascade) or a saved workflow fetched with
an API key. An inline spec may load a detector from a local model package (a step's `model_id` is the
package's absolute path, see video_assets/models/): the package is checked before the pipeline
starts, and its content hash is part of the workflow version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from video_assets.backends.base import (
    BackendError,
    BackendIdentity,
    BackendKind,
    Detection,
    FramePrediction,
    PredictionSink,
    VideoBackend,
)
from video_assets.ingest.probe import VideoProbe
from video_assets.models.package import ModelPackage, ModelPackageError, load_package, local_model_ids

WORKFLOWS_DIR = Path(__file__).parent / "workflows"
DEFAULT_WORKFLOW_FILE = str(WORKFLOWS_DIR / "motion_tracking.json")
FACE_WORKFLOW_FILE = str(WORKFLOWS_DIR / "face_tracking.json")
DEFAULT_DETECTIONS_OUTPUT = "predictions"


class WorkflowConfig(dg.Config):
    """Which workflow runs: an inline spec file, or a saved workflow (self_hosted, server; hosted's workflow form)."""

    workflow_file: str = Field(
        default=DEFAULT_WORKFLOW_FILE,
        description="Inline workflow spec (JSON); used when no saved workflow is set.",
        json_schema_extra={"env": "VIDEO_ASSETS_WORKFLOW"},
    )
    workspace: str | None = Field(
        default=None,
        description="Roboflow workspace of a saved workflow.",
        json_schema_extra={"env": "ROBOFLOW_WORKSPACE"},
    )
    workflow_id: str | None = Field(
        default=None,
        description="Saved workflow id (needs an API key and network).",
        json_schema_extra={"env": "ROBOFLOW_WORKFLOW"},
    )
    workflow_version_id: str | None = Field(
        default=None,
        description="Pin a saved workflow version.",
        json_schema_extra={"env": "ROBOFLOW_WORKFLOW_VERSION"},
    )


@dataclass(frozen=True)
class SelfHostedBackend(VideoBackend):
    """Runs every frame of a video through InferencePipeline.init_with_workflow."""

    workflow_file: str = DEFAULT_WORKFLOW_FILE
    workspace: str | None = None
    workflow_id: str | None = None
    workflow_version_id: str | None = None
    api_key: str | None = None  # only needed for a saved workflow
    workflow_parameters: dict[str, Any] = field(default_factory=dict)
    detections_output: str = DEFAULT_DETECTIONS_OUTPUT  # the workflow output holding the detections to store

    @classmethod
    def from_config(cls, config: WorkflowConfig, api_key: str | None = None) -> SelfHostedBackend:
        return cls(
            workflow_file=config.workflow_file,
            workspace=config.workspace,
            workflow_id=config.workflow_id,
            workflow_version_id=config.workflow_version_id,
            api_key=api_key,
        )

    @property
    def uses_saved_workflow(self) -> bool:
        return bool(self.workspace and self.workflow_id)

    def identity(self) -> BackendIdentity:
        return BackendIdentity(KIND.name, self.workflow_version())

    def workflow_version(self) -> str:
        """A saved workflow's name and version; an inline spec's hash, with the content of the model packages it loads."""
        if self.uses_saved_workflow:
            return f"{self.workspace}/{self.workflow_id}@{self.workflow_version_id or 'latest'}"
        spec = self.load_spec()
        models = {str(p.path): p.content_hash() for p in self.model_packages(spec)}
        return "inline:" + spec_hash({"spec": spec, "models": models} if models else spec)

    def model_packages(self, spec: dict[str, Any]) -> list[ModelPackage]:
        """The local model packages the spec loads, checked (a folder that would run Python code is refused)."""
        try:
            return [load_package(path) for path in local_model_ids(spec, self.workflow_parameters)]
        except ModelPackageError as exc:
            raise BackendError(f"Workflow {self.workflow_file}: {exc}", permanent=True) from exc

    def load_spec(self) -> dict[str, Any]:
        path = Path(self.workflow_file)
        try:
            spec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BackendError(
                f"Workflow spec {path} cannot be read ({exc}). Point VIDEO_ASSETS_WORKFLOW at a JSON "
                "workflow definition, or unset it to use the shipped motion-tracking workflow."
            ) from exc
        if not isinstance(spec, dict):
            raise BackendError(f"Workflow spec {path} is not a JSON object (a workflow definition).")
        return spec

    def predict(self, video: VideoProbe, sink: PredictionSink, log: logging.Logger) -> None:
        packages = [] if self.uses_saved_workflow else self.model_packages(self.load_spec())
        pipeline_cls = import_inference_pipeline(offline=not self.uses_saved_workflow)
        reset_tracker_ids()
        collector = _FrameCollector(sink, self.detections_output, video.media.fps, log, [p.path for p in packages])
        try:
            pipeline = pipeline_cls.init_with_workflow(
                video_reference=video.path,
                on_prediction=collector.on_prediction,
                status_update_handlers=[collector.on_status],
                workflows_parameters=self.workflow_parameters or None,
                **self.workflow_arguments(),
            )
        except Exception as exc:
            raise BackendError(f"Could not start the workflow for {video.path}: {type(exc).__name__}: {exc}") from exc
        try:
            pipeline.start()
            pipeline.join()
        finally:
            terminate_pipeline(pipeline, log)
        collector.raise_if_failed(video)

    def workflow_arguments(self) -> dict[str, Any]:
        """The workflow part of InferencePipeline.init_with_workflow's arguments."""
        if self.uses_saved_workflow:
            return {
                "workspace_name": self.workspace,
                "workflow_id": self.workflow_id,
                "workflow_version_id": self.workflow_version_id,
                "api_key": self.api_key,
            }
        return {"workflow_specification": self.load_spec()}


def spec_hash(spec: dict[str, Any]) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def import_inference_pipeline(offline: bool, with_workflow_engine: bool = False) -> Any:
    """Import inference only where a video is processed (a run worker, a camera worker).

    `with_workflow_engine`: also import the Workflows execution engine and its blocks (about 2 s), which
    `inference` otherwise imports when a process starts its first pipeline.

    `inference` reads OFFLINE_MODE once, at import: offline (inline workflows), it makes no network
    call at all. A process that imported it offline cannot fetch a saved workflow afterwards. It also
    reads at import whether a model block may load a local package folder: allowed, because every
    package an inline spec names is checked first (SelfHostedBackend.model_packages).
    """
    os.environ.setdefault("DISABLE_VERSION_CHECK", "true")
    os.environ.setdefault("ALLOW_INFERENCE_MODELS_DIRECTLY_ACCESS_LOCAL_PACKAGES", "True")
    if offline:
        os.environ.setdefault("OFFLINE_MODE", "true")
    elif "inference" in sys.modules and os.environ.get("OFFLINE_MODE", "").lower() == "true":
        raise BackendError(
            "A saved workflow needs network, but this worker process imported `inference` offline for an inline "
            "workflow. Configure the saved workflow for the whole deployment (ROBOFLOW_WORKSPACE and "
            "ROBOFLOW_WORKFLOW), so the run workers start online, then re-run.",
            permanent=True,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from inference import InferencePipeline

        if with_workflow_engine:
            import inference.core.workflows.execution_engine.core  # noqa: F401
    return InferencePipeline


def reset_tracker_ids() -> None:
    """Every video's tracks are numbered from the start, whatever ran before in this worker process.

    The `trackers` library (behind the workflow tracker blocks) numbers tracks with a class-level
    counter per tracker kind, which only its Tracker.reset() clears ("when switching to a new video");
    the blocks build a new tracker per pipeline without calling it, so ids would run on from video
    to video in a long-lived process.
    """
    from trackers.utils.base_tracklet import BaseTracklet

    pending: list[type] = [BaseTracklet]
    while pending:
        tracklet = pending.pop()
        tracklet.count_id = 0  # type: ignore[attr-defined]
        pending.extend(tracklet.__subclasses__())


def terminate_pipeline(pipeline: Any, log: logging.Logger) -> None:
    """join() returns after an inference-thread error while a reader thread lingers; always terminate."""
    try:
        pipeline.terminate()
    except Exception as exc:  # the pipeline has ended either way
        log.debug(f"InferencePipeline.terminate() after join: {exc}")


class _FrameCollector:
    """Turns InferencePipeline callbacks into FramePredictions, keeping errors the pipeline would swallow."""

    def __init__(
        self, sink: PredictionSink, detections_output: str, fps: float, log: logging.Logger, packages: list[Path]
    ):
        self.sink = sink
        self.packages = packages  # the local model packages the workflow loads, named when it fails
        self.detections_output = detections_output
        self.fps = fps
        self.log = log
        self.sink_error: Exception | None = None
        self.inference_errors: list[str] = []

    def on_prediction(self, result: dict[str, Any], frame: Any) -> None:
        if self.sink_error is not None:
            return
        try:
            frame_idx = frame.frame_id - 1  # InferencePipeline counts from 1
            detections, outputs = parse_result(result, self.detections_output)
            self.sink.add_frame(FramePrediction(frame_idx, frame_idx / self.fps, detections, outputs, frame.image))
        except Exception as exc:  # InferencePipeline would log this and carry on
            self.sink_error = exc

    def on_status(self, update: Any) -> None:
        if str(getattr(update.event_type, "value", update.event_type)) == "INFERENCE_ERROR":
            payload = update.payload or {}
            self.inference_errors.append(
                f"{payload.get('error_type', 'error')}: {payload.get('error_message', payload)}"
            )

    def raise_if_failed(self, video: VideoProbe) -> None:
        if self.sink_error is not None:
            raise BackendError(
                f"Writing predictions for {video.path} failed: {type(self.sink_error).__name__}: {self.sink_error}"
            ) from self.sink_error
        if self.inference_errors:
            advice = (
                f"It loads the model package(s) {', '.join(map(str, self.packages))}: if the error is about the model, "
                f"import the weights again (video-assets model import WEIGHTS.onnx --name NAME --replace)."
                if self.packages
                else "Check that every block can run here (model blocks need an API key and network, a local "
                "model package, or cached weights)."
            )
            raise BackendError(f"The workflow failed on {video.path}: {self.inference_errors[0]}. {advice}")


def parse_result(result: dict[str, Any], detections_output: str) -> tuple[tuple[Detection, ...], dict[str, Any]]:
    """One workflow result: the detections to store (the output named `detections_output`, else the first
    output holding detections) and the scalar outputs."""
    chosen = result.get(detections_output)
    if not _is_detections(chosen):
        chosen = next((result[k] for k in sorted(result) if _is_detections(result[k])), None)
    return tuple(_detections(chosen)), scalar_outputs(result)


def _is_detections(value: Any) -> bool:
    return hasattr(value, "xyxy") and hasattr(value, "tracker_id")


def _detections(detections: Any) -> list[Detection]:
    if detections is None or len(detections) == 0:
        return []
    names = detections.data.get("class_name") if detections.data else None
    rows = []
    for i, (x1, y1, x2, y2) in enumerate(detections.xyxy.tolist()):
        rows.append(
            Detection(
                class_name=str(names[i]) if names is not None else "",
                class_id=int(detections.class_id[i]) if detections.class_id is not None else -1,
                confidence=float(detections.confidence[i]) if detections.confidence is not None else None,
                x=(x1 + x2) / 2.0,
                y=(y1 + y2) / 2.0,
                width=float(x2 - x1),
                height=float(y2 - y1),
                tracker_id=int(detections.tracker_id[i]) if detections.tracker_id is not None else None,
            )
        )
    return rows


def scalar_outputs(result: dict[str, Any]) -> dict[str, Any]:
    """Counts, flags and labels the workflow emits per frame (line counts, alarms); not images or boxes."""
    scalars = {}
    for name, value in result.items():
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()  # numpy scalar
        if isinstance(value, (bool, int, float, str)):
            scalars[name] = value
    return scalars


KIND = BackendKind(
    name="self_hosted",
    description="InferencePipeline in the run process; every frame",
    config=WorkflowConfig,
    build=lambda config, context: SelfHostedBackend.from_config(config, context.api_key),
    runs_workflow_files=True,
    warm_up=lambda config: import_inference_pipeline(
        offline=not SelfHostedBackend.from_config(config).uses_saved_workflow, with_workflow_engine=True
    ),
)
