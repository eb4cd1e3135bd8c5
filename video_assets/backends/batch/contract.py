"""Roboflow Batch Processing as its official client speaks it (inference-cli 1.8.3,
`inference_cli/lib/roboflow_cloud/`), and tolerant reading of the answers and of the results files.

- Data Staging: `POST …/batches/{batch}/upload/video?fileName=` answers `signedURLDetails`
  `{uploadURL, extensionHeaders}`; the file is PUT to `uploadURL` with exactly those headers.
  `GET …/batches/{batch}` (`{"batch": {batchType}}`), `…/parts` (`{"batchParts": [{partName}]}`),
  `…/list?partName=&nextPageToken=` (`{"filesMetadata": [{downloadURL, fileName, partName}], "nextPageToken"}`).
- Batch Processing: `POST …/jobs/{job_id}` with a `simple-video-processing-v1` definition. The client
  chooses the job id; Roboflow documents that the same id with the same definition is accepted again,
  a different definition answers 409. `GET …/jobs/{job_id}` (`{"job": {isTerminal, error, currentStage,
  lastNotification}}`) and `…/stages` (`{"stages": [{processingStageName, statusType, outputBatches, notification}]}`).
- Ids are the client's: lowercase letters, digits, `-` and `_`; a batch id at most 64 characters, a job id at most 20.
- States, read as the CLI reads them: a job is over when `isTerminal`, and failed when it is over with
  `error`; a stage is running while its `statusType` is "info" and failed when the type contains "error".

What a video job's results files hold is not documented: each JSON line is taken to be the serialized
workflow outputs of one processed frame, in order (as inference-cli's own video runner writes them);
`frames_from_rows` says how frames are located.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from video_assets.backends.base import Detection, FramePrediction
from video_assets.backends.self_hosted import scalar_outputs

JOB_TYPE = "simple-video-processing-v1"
MACHINE_TYPES = ("cpu", "gpu")
MAX_BATCH_ID = 64
MAX_JOB_ID = 20
_ID = re.compile(r"^[a-z0-9_-]+$")
_ID_ALPHABET = string.ascii_lowercase + string.digits
FRAME_OFFSET_KEYS = ("frame_offset", "frame_idx", "frame_index")  # 0-based
FRAME_NUMBER_KEYS = ("frame_number", "frame_id")  # 1-based: InferencePipeline counts frames from 1


class ContractError(ValueError):
    """An answer lacks what the contract promises."""


# Ids and requests -----------------------------------------------------------------------------


def checked_id(kind: str, value: str, longest: int) -> str:
    if not _ID.match(value) or len(value) > longest:
        raise ValueError(
            f"{kind} {value!r} must be lowercase letters, digits, '-' or '_', at most {longest} characters"
        )
    return value


def new_batch_id(now: datetime) -> str:
    return checked_id("batch id", f"va-{now:%Y%m%d-%H%M%S}-{_random(8)}", MAX_BATCH_ID)


def new_job_id() -> str:
    return checked_id("job id", f"va-{_random(12)}", MAX_JOB_ID)


def _random(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class JobSettings:
    """Everything a job definition holds besides its input batch; kept with the job, so that a
    definition sent again (after an ambiguous answer) is the very same one."""

    workspace: str
    workflow_id: str
    max_video_fps: int
    machine_type: str
    workers_per_machine: int | None = None
    max_runtime_s: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobSettings:
        return cls(**json.loads(text))


def job_definition(batch_id: str, settings: JobSettings) -> dict[str, Any]:
    """The body of `POST …/jobs/{job_id}`, shaped as inference-cli's WorkflowProcessingJobV1 (no nulls)."""
    compute: dict[str, Any] = {"type": "compute-configuration-v2", "machineType": settings.machine_type}
    if settings.workers_per_machine:
        compute["workersPerMachine"] = settings.workers_per_machine
    body: dict[str, Any] = {
        "type": JOB_TYPE,
        "jobInput": {"type": "staging-batch-input-v1", "batchId": batch_id},
        "computeConfiguration": compute,
        "processingSpecification": {
            "type": "workflows-processing-specification-v1",
            "workspace": settings.workspace,
            "workflowId": settings.workflow_id,
            "persistImagesOutputs": False,
            "aggregationFormat": "jsonl",
            "maxVideoFPS": settings.max_video_fps,
        },
    }
    if settings.max_runtime_s:
        body["processingTimeoutSeconds"] = settings.max_runtime_s
    return body


def staging_path(workspace: str, batch_id: str, *rest: str) -> str:
    return "/".join(("/data-staging/v1/external", quote(workspace, safe=""), "batches", batch_id, *rest))


def job_path(workspace: str, job_id: str, *rest: str) -> str:
    return "/".join(("/batch-processing/v1/external", quote(workspace, safe=""), "jobs", job_id, *rest))


# Answers ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedUpload:
    url: str
    headers: dict[str, str]  # the extension headers the URL was signed with: the PUT must send them


@dataclass(frozen=True)
class JobStatus:
    state: Literal["running", "succeeded", "failed"]
    stage: str | None
    message: str
    results_batches: tuple[str, ...] = ()  # named by the last notification, when it names them


@dataclass(frozen=True)
class Stage:
    name: str
    status_type: str
    output_batches: tuple[str, ...]
    message: str

    @property
    def failed(self) -> bool:
        return "error" in self.status_type.lower()


@dataclass(frozen=True)
class StagedFile:
    file_name: str
    download_url: str
    part_name: str | None


def parse_signed_upload(body: dict[str, Any]) -> SignedUpload:
    details = body.get("signedURLDetails")
    if not isinstance(details, dict) or not isinstance(details.get("uploadURL"), str) or not details["uploadURL"]:
        raise ContractError(f"no signedURLDetails.uploadURL in the answer (keys: {sorted(body)})")
    url, headers = details["uploadURL"], details.get("extensionHeaders") or {}
    if not isinstance(headers, dict):
        raise ContractError("signedURLDetails.extensionHeaders is not an object")
    return SignedUpload(url, {str(k): str(v) for k, v in headers.items()})


def parse_job(body: dict[str, Any]) -> JobStatus:
    job = body.get("job")
    if not isinstance(job, dict):
        raise ContractError(f"no job in the answer (keys: {sorted(body)})")
    notification = job.get("lastNotification")
    message = describe(notification)
    stage = job.get("currentStage") if isinstance(job.get("currentStage"), str) else None
    batches = notification.get("resultsBatches") if isinstance(notification, dict) else None
    results = tuple(str(b) for b in batches) if isinstance(batches, list) else ()
    if not job.get("isTerminal"):
        return JobStatus("running", stage, message, results)
    if job.get("error"):
        return JobStatus("failed", stage, message or "the job ended with an error and no message", results)
    return JobStatus("succeeded", stage, message, results)


def parse_stages(body: dict[str, Any]) -> list[Stage]:
    stages = body.get("stages")
    if not isinstance(stages, list):
        raise ContractError(f"no stages in the answer (keys: {sorted(body)})")
    return [
        Stage(
            name=str(s.get("processingStageName") or s.get("processingStageId") or ""),
            status_type=str(s.get("statusType") or ""),
            output_batches=tuple(str(b) for b in s.get("outputBatches") or []),
            message=describe(s.get("notification")),
        )
        for s in stages
        if isinstance(s, dict)
    ]


def results_batch(stages: list[Stage], status: JobStatus) -> str | None:
    """Where a finished job's results are: the `export` stage's output (archives made for download),
    else the batch its last notification names, else the last stage's output."""
    exports = [b for s in stages if "export" in s.name.lower() for b in s.output_batches]
    any_stage = [b for s in stages for b in s.output_batches]
    return next(iter(exports[-1:] or status.results_batches[-1:] or any_stage[-1:]), None)


def parse_batch_type(body: dict[str, Any]) -> str:
    batch = body.get("batch")
    if not isinstance(batch, dict) or not isinstance(batch.get("batchType"), str):
        raise ContractError(f"no batch.batchType in the answer (keys: {sorted(body)})")
    return batch["batchType"]


def parse_parts(body: dict[str, Any]) -> list[str]:
    parts = body.get("batchParts")
    if not isinstance(parts, list):
        raise ContractError(f"no batchParts in the answer (keys: {sorted(body)})")
    return [str(p["partName"]) for p in parts if isinstance(p, dict) and p.get("partName")]


def parse_listing(body: dict[str, Any]) -> tuple[list[StagedFile], str | None]:
    files = body.get("filesMetadata")
    if not isinstance(files, list):
        raise ContractError(f"no filesMetadata in the answer (keys: {sorted(body)})")
    listed = [
        StagedFile(str(f["fileName"]), str(f["downloadURL"]), f.get("partName"))
        for f in files
        if isinstance(f, dict) and f.get("fileName") and f.get("downloadURL")
    ]
    token = body.get("nextPageToken")
    return listed, str(token) if token else None


def describe(notification: Any) -> str:
    """A notification (a string, or an object with a message) as one line of text."""
    if isinstance(notification, dict):
        text = notification.get("message") or notification.get("reason") or notification.get("error")
        return str(text) if text else json.dumps(notification, sort_keys=True)
    return str(notification) if notification else ""


# Results files -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultFrames:
    frames: list[FramePrediction]
    located: bool  # the rows said which frame they are; otherwise their order did
    exact: bool  # False: positions were estimated from a fractional sampling stride


def frames_from_rows(
    rows: list[dict[str, Any]], video_fps: float, sampled_fps: float, frame_count: int, detections_output: str
) -> ResultFrames:
    """Frames from one video's result rows, with the same frame_idx / time_offset_s as the other backends.

    A row that carries its frame (0-based `frame_offset`/`frame_idx`/`frame_index`, or 1-based
    `frame_number`/`frame_id` as InferencePipeline counts, at the top or in a nested object such as
    `video_metadata`) is placed there. Rows that do not are placed by their order: the n-th processed
    frame is n × (video fps / sampled fps), which is exact when the ratio is whole (InferencePipeline
    keeps every k-th frame of a file). Otherwise InferencePipeline picks between the two nearest strides
    at random, and the rows are spread evenly over the video's frames: an estimate.
    """
    found = [frame_position(row) for row in rows]
    stride = video_fps / sampled_fps if sampled_fps > 0 else 1.0
    located = bool(rows) and None not in found
    exact = located or abs(stride - round(stride)) < 1e-9
    if not exact and rows:
        stride = frame_count / len(rows)
    positions = [p for p in found if p is not None] if located else [round(i * stride) for i in range(len(rows))]
    frames, last = [], -1
    for position, row in sorted(zip(positions, rows, strict=True), key=lambda pair: pair[0]):
        if position <= last or position < 0:  # a repeated frame adds nothing
            continue
        last = position
        frames.append(_frame(position, position / video_fps, row, detections_output))
    return ResultFrames(frames, located, exact)


def frame_position(row: dict[str, Any]) -> int | None:
    scopes = [row, *(v for v in row.values() if isinstance(v, dict) and "predictions" not in v)]
    for scope in scopes:
        for names, base in ((FRAME_OFFSET_KEYS, 0), (FRAME_NUMBER_KEYS, 1)):
            for name in names:
                value = scope.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    return value - base
    return None


def _frame(frame_idx: int, time_s: float, row: dict[str, Any], detections_output: str) -> FramePrediction:
    chosen: dict[str, Any] = row.get(detections_output) or {}
    if not _holds_predictions(chosen):
        chosen = next((row[k] for k in sorted(row) if _holds_predictions(row[k])), {})
    boxes = tuple(Detection.from_roboflow(p) for p in chosen.get("predictions") or [] if isinstance(p, dict))
    outputs = {k: v for k, v in scalar_outputs(row).items() if k not in FRAME_OFFSET_KEYS + FRAME_NUMBER_KEYS}
    return FramePrediction(frame_idx=frame_idx, time_offset_s=time_s, detections=boxes, outputs=outputs)


def _holds_predictions(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("predictions"), list)
