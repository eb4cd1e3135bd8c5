"""Server backend: a self-hosted inference server (Docker image or `inference server`) runs the workflow.

The video is handed over by path through `inference_sdk`'s pipeline API
(`/inference_pipelines/initialise`, then `/consume` until the file is done), so the server must
see the same file system (same host or a shared mount). Three facts of inference 1.8.3's server
shape this module (README, "Server backend"):
- its defaults drop frames of a file (DROP_OLDEST/EAGER): we ask for WAIT/LAZY;
- it keeps results in a bounded buffer and ends a pipeline within about a second after its file
  is decoded, discarding results not consumed yet: we ask for a one-frame decoding buffer,
  consume without pause, and when the server ended the pipeline before it reported a clean
  finish, run the video again (frames are held per attempt; only a complete attempt, or the
  best one with a warning, reaches the sink);
- it cannot serialise detections without a `detection_id` (motion_detection@v1 emits none): an
  inline spec's detections output is routed through a small Python block that adds ids.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import requests
from pydantic import Field

from video_assets.backends.base import (
    STARTUP_ALLOWANCE_S,
    BackendError,
    BackendIdentity,
    BackendKind,
    BuildContext,
    Detection,
    FramePrediction,
    PredictionSink,
    VideoBackend,
)
from video_assets.backends.self_hosted import SelfHostedBackend, WorkflowConfig, scalar_outputs
from video_assets.ingest.probe import VideoProbe
from video_assets.roboflow.redact import redact

_IDS_BLOCK = "VideoAssetsDetectionIds"
_ADD_IDS = (
    "def run(self, predictions):\n"
    "    if len(predictions) and 'detection_id' not in predictions.data:\n"
    "        predictions['detection_id'] = np.array([str(i) for i in range(len(predictions))])\n"
    "    return {'predictions': predictions}\n"
)
_IDLE_PAUSE_S = 0.02


class ServerConfig(WorkflowConfig):
    server_url: str = Field(
        default="http://localhost:9001",
        description="Inference server with the stream API enabled (ENABLE_STREAM_API=True).",
        json_schema_extra={"env": "VIDEO_ASSETS_INFERENCE_SERVER_URL"},
    )
    server_results_buffer_size: int = Field(
        default=1024, ge=1, description="Results the server may hold for us (each holds a frame)."
    )
    server_timeout_seconds: float = Field(default=3600.0, gt=0, description="Give up on one video after this long.")


class ServerBackend(VideoBackend):
    def __init__(
        self,
        url: str,
        workflow: SelfHostedBackend,
        results_buffer_size: int = 1024,
        timeout_s: float = 3600.0,
        attempts: int = 3,
    ):
        self.url = url.rstrip("/")
        self.workflow = workflow
        self.results_buffer_size = results_buffer_size
        self.timeout_s = timeout_s
        self.attempts = attempts

    def identity(self) -> BackendIdentity:
        return BackendIdentity(KIND.name, self.workflow.workflow_version())

    def max_runtime_s(self, video: VideoProbe) -> float:
        return STARTUP_ALLOWANCE_S + self.attempts * self.timeout_s

    def predict(self, video: VideoProbe, sink: PredictionSink, log: logging.Logger) -> None:
        best: list[FramePrediction] = []
        for attempt in range(1, self.attempts + 1):
            frames, clean_end = self._run_once(video, log)
            best = frames if len(frames) > len(best) else best
            if clean_end:
                break
            log.warning(
                f"{video.path}: the inference server ended the pipeline after {len(frames)} of "
                f"{video.media.frame_count} frames (it ends a pipeline once its file is decoded and discards "
                f"results not read yet); running the video again ({attempt}/{self.attempts})"
            )
        if not best:
            raise BackendError(
                f"The inference server at {self.url} ended every pipeline for {video.path} without a result "
                f"({self.attempts} attempts). A workflow step may fail there (model blocks need weights or network); "
                "its log says why."
            )
        for frame in best:
            sink.add_frame(frame)
        lost = video.media.frame_count - len(best)
        if lost > 0:
            log.warning(f"{video.path}: the inference server delivered {len(best)} of {video.media.frame_count} frames")

    def _run_once(self, video: VideoProbe, log: logging.Logger) -> tuple[list[FramePrediction], bool]:
        """One pipeline over the whole file: its frames, and whether it ended cleanly (nothing lost)."""
        client = self._client()
        pipeline_id = self._start(video)
        log.info(f"{video.path}: pipeline {pipeline_id} started on {self.url}")
        try:
            return self._consume(client, pipeline_id, video)
        finally:
            self._terminate(client, pipeline_id, log)

    def server_spec(self) -> dict[str, Any]:
        """The inline spec as sent: its detections output gains ids the server's serialiser needs."""
        spec = copy.deepcopy(self.workflow.load_spec())
        output_name = self.workflow.detections_output
        output = next((o for o in spec.get("outputs", []) if o.get("name") == output_name), None)
        if output is None or not str(output.get("selector", "")).startswith("$steps."):
            return spec
        spec.setdefault("dynamic_blocks_definitions", []).append(
            {
                "type": "DynamicBlockDefinition",
                "manifest": {
                    "type": "ManifestDescription",
                    "block_type": _IDS_BLOCK,
                    "inputs": {"predictions": {"type": "DynamicInputDefinition", "selector_types": ["step_output"]}},
                    "outputs": {"predictions": {"type": "DynamicOutputDefinition", "kind": []}},
                },
                "code": {"type": "PythonCode", "run_function_code": _ADD_IDS},
            }
        )
        spec["steps"].append({"type": _IDS_BLOCK, "name": "video_assets_ids", "predictions": output["selector"]})
        output["selector"] = "$steps.video_assets_ids.predictions"
        return spec

    def _client(self) -> Any:
        from inference_sdk import InferenceHTTPClient  # imported only when a run uses this backend

        return InferenceHTTPClient(api_url=self.url, api_key=self.workflow.api_key)

    def _start(self, video: VideoProbe) -> str:
        """POST /inference_pipelines/initialise with the SDK's payload plus the two buffer sizes it leaves out.

        A decoding buffer of one frame keeps the decoder from reaching the end of the file while
        frames still wait for inference: the server ends a pipeline once its file is decoded.
        """
        processing = {
            "type": "WorkflowConfiguration",
            "image_input_name": "image",
            "workflows_parameters": self.workflow.workflow_parameters or None,
        }
        if self.workflow.uses_saved_workflow:
            processing.update(
                workspace_name=self.workflow.workspace,
                workflow_id=self.workflow.workflow_id,
                workflow_version_id=self.workflow.workflow_version_id,
            )
        else:
            processing["workflow_specification"] = self.server_spec()
        payload: dict[str, Any] = {
            "api_key": self.workflow.api_key,
            "video_configuration": {
                "type": "VideoConfiguration",
                "video_reference": video.path,
                # Every frame of a file: the SDK's defaults (DROP_OLDEST/EAGER) skip frames.
                "source_buffer_filling_strategy": "WAIT",
                "source_buffer_consumption_strategy": "LAZY",
            },
            "processing_configuration": processing,
            "sink_configuration": {"type": "MemorySinkConfiguration", "results_buffer_size": self.results_buffer_size},
            "decoding_buffer_size": 1,
            "predictions_queue_size": 1,
        }
        try:
            answer = requests.post(f"{self.url}/inference_pipelines/initialise", json=payload, timeout=(10, 300))
            answer.raise_for_status()
            return answer.json()["context"]["pipeline_id"]
        except Exception as exc:
            detail = getattr(getattr(exc, "response", None), "text", "") or ""
            raise BackendError(
                f"The inference server at {self.url} could not start a pipeline for {video.path}: "
                f"{self._describe(exc)} {redact(detail[:300], [self.workflow.api_key])}. "
                "Check that it runs with ENABLE_STREAM_API=True and can read this path."
            ) from None

    def _consume(self, client: Any, pipeline_id: str, video: VideoProbe) -> tuple[list[FramePrediction], bool]:
        deadline = time.monotonic() + self.timeout_s
        frames: list[FramePrediction] = []
        finished = False
        while time.monotonic() < deadline:
            try:
                answer = client.consume_inference_pipeline_result(pipeline_id=pipeline_id)
            except Exception as exc:
                if _status(exc) == 404:  # the server ended the pipeline (at the end of the file, or on an error)
                    return frames, finished
                raise BackendError(
                    f"The inference server failed on {video.path} (pipeline {pipeline_id}): {self._describe(exc)}"
                ) from None
            outputs, metadata = answer.get("outputs") or [], answer.get("frames_metadata") or []
            if not outputs:
                if finished:  # drained once more after the end: a result dispatched late is not lost
                    return frames, True
                finished = self._finished(client, pipeline_id)
                time.sleep(0 if finished else _IDLE_PAUSE_S)
                continue
            for output, frame in zip(outputs, metadata, strict=False):  # the server sends them pairwise
                frame_idx = int(frame["frame_id"]) - 1 if frame else -1
                if output is None or (frames and frame_idx <= frames[-1].frame_idx) or frame_idx < 0:
                    continue
                frames.append(_frame(output, frame_idx, video.media.fps, self.workflow.detections_output))
        raise BackendError(f"{video.path} was not finished by the inference server within {self.timeout_s:g} s")

    def _finished(self, client: Any, pipeline_id: str) -> bool:
        """The file is decoded and every source ended; nothing more will arrive once the buffer is empty."""
        try:
            report = client.get_inference_pipeline_status(pipeline_id=pipeline_id).get("report", {})
        except Exception as exc:
            return _status(exc) == 404
        states = {s.get("state") for s in report.get("sources_metadata", [])}
        finished = {u.get("event_type") for u in report.get("video_source_status_updates", []) if isinstance(u, dict)}
        return bool(states) and states <= {"ENDED", "ERROR"} and "INFERENCE_THREAD_FINISHED" in finished

    def _terminate(self, client: Any, pipeline_id: str, log: logging.Logger) -> None:
        try:
            client.terminate_inference_pipeline(pipeline_id=pipeline_id)
        except Exception as exc:  # already ended by the server at the end of the file
            log.debug(f"terminate pipeline {pipeline_id}: {self._describe(exc)}")

    def _describe(self, exc: Exception) -> str:
        message = getattr(exc, "api_message", None) or str(exc)
        return redact(f"{type(exc).__name__}: {message}", [self.workflow.api_key])


def _frame(output: dict[str, Any], frame_idx: int, fps: float, detections_output: str) -> FramePrediction:
    detections = output.get(detections_output)
    if not (isinstance(detections, dict) and "predictions" in detections):
        detections = next((v for v in output.values() if isinstance(v, dict) and "predictions" in v), {})
    boxes = tuple(Detection.from_roboflow(p) for p in detections.get("predictions") or [])
    return FramePrediction(
        frame_idx=frame_idx, time_offset_s=frame_idx / fps, detections=boxes, outputs=scalar_outputs(output)
    )


def _status(exc: Exception) -> int | None:
    return getattr(exc, "status_code", None)


def _build(config: ServerConfig, context: BuildContext) -> ServerBackend:
    return ServerBackend(
        url=config.server_url,
        workflow=SelfHostedBackend.from_config(config, context.api_key),
        results_buffer_size=config.server_results_buffer_size,
        timeout_s=config.server_timeout_seconds,
    )


KIND = BackendKind(
    name="server",
    description="a self-hosted inference server, through its pipeline API; every frame",
    config=ServerConfig,
    build=_build,
    runs_workflow_files=True,
)
