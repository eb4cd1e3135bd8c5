"""The hosted video API's two request forms, and tolerant parsing of its answers.

- "workflow" form (the Process-a-Video-Stream recipe): `file_name` as a query parameter;
  `signedUrl` + `fileUrl`; job body `{api_key, workspace, workflow, video_url, fps}`; `jobId`;
  status `"complete"` / `"failed"`.
- "models" form (the documented Video Inference API and Roboflow's SDK): JSON body `file_name`;
  `signed_url`; job body `{input_url, infer_fps, models: [...]}`; `job_id`; numeric status
  0 done / 1 running / >1 failed; `output_signed_url`.

Answers are read whichever spelling comes back, because the two sources disagree and neither is
a formal schema (see README, "Hosted backend").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from video_assets.backends.base import Detection, FramePrediction

Form = Literal["workflow", "models"]
JobState = Literal["running", "done", "failed"]
_OFFSET_KEYS = ("frame_offset", "frame_offsets", "time_offset", "time_offsets")


class ContractError(ValueError):
    """An answer from the hosted API lacks what the contract promises."""


@dataclass(frozen=True)
class Target:
    """What the hosted API runs: a saved workflow (workflow form) or a model version (models form)."""

    form: Form
    workspace: str = ""
    workflow: str = ""
    model_id: str = ""  # project slug
    model_version: str = ""
    inference_type: str = "object-detection"

    @classmethod
    def for_workflow(cls, workspace: str, workflow: str) -> Target:
        return cls("workflow", workspace=workspace, workflow=workflow)

    @classmethod
    def for_model(cls, model: str) -> Target:
        project, sep, version = model.strip().strip("/").rpartition("/")
        if not sep or not project or not version:
            raise ValueError(
                f"ROBOFLOW_MODEL={model!r} is not of the form project/version (for example people-abc12/3)"
            )
        return cls("models", model_id=project, model_version=version)

    @property
    def identity(self) -> str:
        """Stable name used in the job ledger and as `workflow_version` on every row."""
        if self.form == "workflow":
            return f"{self.workspace}/{self.workflow}@latest"
        return f"model:{self.model_id}/{self.model_version}"

    @property
    def results_key(self) -> str:
        return self.workflow if self.form == "workflow" else self.model_id

    # Requests -----------------------------------------------------------------------------

    def signed_url_request(self, api_key: str, file_name: str) -> dict[str, Any]:
        """path, query params and JSON body of the signed-upload-URL request."""
        if self.form == "workflow":
            return {"path": "/video_upload_signed_url/", "params": {"api_key": api_key, "file_name": file_name}}
        return {"path": "/video_upload_signed_url", "params": {"api_key": api_key}, "json": {"file_name": file_name}}

    def upload_content_type(self) -> str:
        return "video/mp4" if self.form == "workflow" else "application/octet-stream"

    def submit_request(self, api_key: str, video_url: str, fps: int) -> dict[str, Any]:
        if self.form == "workflow":
            body = {
                "api_key": api_key,
                "workspace": self.workspace,
                "workflow": self.workflow,
                "video_url": video_url,
                "fps": fps,
            }
            return {"path": "/videoinfer/", "params": {}, "json": body}
        model = {"model_id": self.model_id, "model_version": self.model_version, "inference_type": self.inference_type}
        return {
            "path": "/videoinfer/",
            "params": {"api_key": api_key},
            "json": {"input_url": video_url, "infer_fps": fps, "models": [model]},
        }

    def status_request(self, api_key: str, job_id: str) -> dict[str, Any]:
        id_param = "jobId" if self.form == "workflow" else "job_id"
        return {"path": "/videoinfer", "params": {"api_key": api_key, id_param: job_id}}


# Answers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedUpload:
    upload_url: str  # where to PUT the bytes
    video_url: str  # what the job reads: `fileUrl`, else the signed URL itself (as Roboflow's SDK does)


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    output_url: str | None = None
    message: str = ""
    progress: Any = None


def parse_signed_upload(body: dict[str, Any]) -> SignedUpload:
    upload_url = _first(body, "signed_url", "signedUrl")
    if not isinstance(upload_url, str) or not upload_url:
        raise ContractError(f"no signed_url/signedUrl in the answer (keys: {sorted(body)})")
    video_url = _first(body, "fileUrl", "file_url")
    return SignedUpload(upload_url, video_url if isinstance(video_url, str) and video_url else upload_url)


def parse_job_id(body: dict[str, Any]) -> str:
    job_id = _first(body, "job_id", "jobId")
    if job_id in (None, ""):
        raise ContractError(f"no job_id/jobId in the answer (keys: {sorted(body)})")
    return str(job_id)


def parse_status(body: dict[str, Any]) -> JobStatus:
    status = body.get("status")
    output_url = _first(body, "output_signed_url", "outputSignedUrl", "output_url", "outputUrl")
    message = str(_first(body, "message", "error", "detail") or "")
    progress = body.get("progress")
    if isinstance(status, bool) or status is None:
        return JobStatus("running", progress=progress)
    if isinstance(status, (int, float)) or (isinstance(status, str) and status.strip().isdigit()):
        code = int(status)
        state: JobState = "done" if code == 0 else "running" if code == 1 else "failed"
    else:
        word = str(status).strip().lower()
        state = (
            "done"
            if word in {"complete", "completed", "succeeded", "success", "done"}
            else ("failed" if word in {"failed", "failure", "error", "errored", "cancelled", "canceled"} else "running")
        )
    if state == "failed" and not message:
        message = f"status {status!r}"
    return JobStatus(state, output_url if isinstance(output_url, str) else None, message, progress)


def parse_results(body: dict[str, Any], results_key: str) -> tuple[list[FramePrediction], int]:
    """Per-frame predictions from the parallel lists, and how many frames the service failed (null)."""
    offsets = _first(body, "frame_offset", "frame_offsets")
    times = _first(body, "time_offset", "time_offsets")
    if not isinstance(offsets, list) or not isinstance(times, list) or len(offsets) != len(times):
        raise ContractError("the results lack equal-length frame_offset and time_offset lists")
    key = results_key if results_key in body else next((k for k in body if k not in _OFFSET_KEYS), None)
    elements = body.get(key) if key else None
    if not isinstance(elements, list) or len(elements) != len(offsets):
        raise ContractError(f"the results have no per-frame list for {results_key!r} as long as frame_offset")
    frames, failed, last = [], 0, -1
    for offset, time_s, element in sorted(zip(offsets, times, elements, strict=False), key=lambda row: row[0]):
        if element is None:
            failed += 1
            continue
        if int(offset) <= last:  # a repeated offset (rounding) adds nothing
            continue
        last = int(offset)
        frames.append(_frame(int(offset), float(time_s), element))
    return frames, failed


def sampled_frames(frame_count: int, video_fps: float, infer_fps: float) -> int:
    """How many frames the service runs at `infer_fps` (offsets round(i * video_fps / infer_fps))."""
    if frame_count <= 0 or video_fps <= 0:
        return 0
    step, count = video_fps / infer_fps, 0
    while round(count * step) < frame_count:
        count += 1
    return count


def _frame(offset: int, time_s: float, element: dict[str, Any]) -> FramePrediction:
    predictions = element.get("predictions") if isinstance(element, dict) else None
    if isinstance(predictions, dict):  # a workflow output that wraps {"image", "predictions"}
        predictions = predictions.get("predictions")
    detections = tuple(Detection.from_roboflow(p) for p in predictions or [] if isinstance(p, dict))
    outputs = {
        name: value
        for name, value in (element.items() if isinstance(element, dict) else [])
        if name != "time" and isinstance(value, (bool, int, float, str))
    }
    return FramePrediction(frame_idx=offset, time_offset_s=time_s, detections=detections, outputs=outputs)


def _first(body: dict[str, Any], *names: str) -> Any:
    return next((body[n] for n in names if n in body and body[n] is not None), None)
