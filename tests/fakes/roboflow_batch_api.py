"""A local stand-in for Roboflow Data Staging and Batch Processing, with fault injection.

Written from what the official client sends and reads (inference-cli 1.8.3,
`inference_cli/lib/roboflow_cloud/{data_staging,batch_processing}/api_operations.py` and `entities.py`)
and from Roboflow's published OpenAPI documents for these endpoints:

- `GET /?api_key=` → `{"workspace"}`.
- `POST /data-staging/v1/external/{ws}/batches/{batch}/upload/video?api_key&fileName[&displayName]` creates
  the batch (a `simple-batch` of videos) and answers `{"status", "signedURLDetails": {"uploadURL", "method",
  "extensionHeaders"}}`; the PUT to `uploadURL` must carry the extension headers (else 403
  SignatureDoesNotMatch, as a V4-signed URL answers). Batch ids: `^[a-z0-9_-]+$`, at most 64 characters.
- `GET …/batches/{batch}` → `{"batch": {displayName, batchId, batchType, batchContentType, createdDate,
  expiryDate}}`; `…/count` → `{"count"}`; `…/parts` → `{"batchParts": [{partName, partType, contentType}]}`;
  `…/list?pageSize&nextPageToken&partName` → `{"filesMetadata": [{downloadURL, fileName, partName,
  contentType}], "nextPageToken"}` (pages of `page_size`).
- `POST /batch-processing/v1/external/{ws}/jobs/{job_id}?api_key&name` with a `simple-video-processing-v1`
  definition. Job ids: `^[a-z0-9_-]+$`, at most 20 characters. The same id with the same definition is
  accepted again without a second job; a different definition is 409. A job reads its batch when created.
- `GET …/jobs/{job_id}` → `{"job": {jobId, name, jobDefinition, currentStage, plannedStages, error,
  isTerminal, lastNotification, createdAt, lastUpdate}}`; `…/stages` → `{"stages": [{processingStageId,
  processingStageName, tasksNumber, outputBatches, startTimestamp, notification, statusType,
  lastEventTimestamp}]}`. Every job status read moves the job on: `processing` (statusType "info") for
  `polls_per_stage` reads, then `export`, then terminal. Stage outputs: `<job>-processing` (a simple batch,
  one JSONL file per video named after it, or with `shared_results` one file whose rows name their
  `input_file`) and `<job>-export` (a multipart batch whose part `results` holds `.tar.gz` shards of
  `videos_per_shard` files each).
- Errors are JSON `{"error": "…"}`, as the OpenAPI documents describe them.

A video's results are computed by decoding the uploaded file with PyAV: frames are kept as
InferencePipeline keeps a file's frames at `maxVideoFPS` (every k-th frame; a fractional stride picks
between its two neighbours at random, seeded here), and each kept frame is one JSON line of workflow
outputs: a detections object (one box whose x is 20 + the frame index, whose confidence is the frame's
mean brightness) and scalar outputs. What the real service writes per line is undocumented;
`frame_position` chooses whether a line also says which frame it is (`none`: order only, like
inference-cli's own video runner; `frame_number`: 1-based, in a `video_metadata` object; `frame_offset`:
0-based, at the top).
"""

from __future__ import annotations

import io
import json
import random
import re
import tarfile
import threading
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes.roboflow_video_api import Fault, RecordedRequest, _Handler

ENDPOINTS = (
    "workspace", "upload_url", "upload", "batch", "count", "parts", "list", "download", "create_job", "job", "stages",
)
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".flv", ".wmv", ".m4v", ".webm")
SIGNED_HEADERS = {"X-Goog-Content-Length-Range": "0,21474836480"}
_ID = re.compile(r"^[a-z0-9_-]+$")
_STAGING = re.compile(r"^/data-staging/v1/external/(?P<ws>[^/]+)/batches/(?P<batch>[^/]+)(?P<rest>/.*)?$")
_JOBS = re.compile(r"^/batch-processing/v1/external/(?P<ws>[^/]+)/jobs/(?P<job>[^/]+)(?P<rest>/.*)?$")


@dataclass
class StagedFile:
    name: str
    path: Path
    part: str | None = None
    content_type: str = "video/mp4"


@dataclass
class StagingBatch:
    batch_id: str
    batch_type: str = "simple-batch"
    content_type: str = "videos"
    display_name: str = ""
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    files: dict[str, StagedFile] = field(default_factory=dict)  # by name (a PUT of the same name replaces it)


@dataclass
class Job:
    job_id: str
    name: str
    definition: dict[str, Any]
    videos: list[StagedFile]  # the batch as the job read it
    reads: int = 0
    stages: list[dict[str, Any]] = field(default_factory=list)
    terminal: bool = False
    error: bool = False
    notification: Any = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class FakeBatchApi:
    root: Path
    api_key: str
    workspace: str = "acme"
    polls_per_stage: int = 1
    frame_position: str = "none"  # none | frame_number | frame_offset
    shared_results: bool = False  # one results file for all videos, each row naming its video (else a file per video)
    videos_per_shard: int = 2
    page_size: int = 2
    hold_jobs: bool = False  # jobs stay queued until released
    fail_jobs: str | None = None  # every job's processing stage fails with this message
    fail_videos: tuple[str, ...] = ()  # a video whose file name holds one of these has a failed task (no results)
    machine_seconds_per_video: float = 0.0  # machine time a video takes; a job over its processingTimeoutSeconds is stopped
    lost_uploads: int = 0  # this many PUTs answer 200 but the batch never lists the file
    expired_upload_urls: int = 0  # this many PUTs answer 400 ExpiredToken
    expired_download_urls: int = 0  # this many downloads answer 400 ExpiredToken
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    batches: dict[str, StagingBatch] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    signatures: set[str] = field(default_factory=set)

    def start(self) -> FakeBatchApi:
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        handler = type("Handler", (_BatchHandler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def inject(self, endpoint: str, times: int = 1, **fault: Any) -> None:
        assert endpoint in ENDPOINTS, endpoint
        for _ in range(times):
            self.faults.append(Fault(endpoint, **fault))

    def count(self, endpoint: str) -> int:
        return Counter(r.endpoint for r in self.requests)[endpoint]

    def restart(self, job_id: str) -> None:
        """What `inference rf-cloud batch-processing restart-job` does to a failed job: it runs again."""
        with self.lock:
            job = self.jobs[job_id]
            job.reads, job.stages, job.terminal, job.error, job.notification = 0, [], False, False, None

    # Results ---------------------------------------------------------------------------------

    def rows_for(self, video: Path, max_fps: float | None) -> list[dict[str, Any]]:
        import av

        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate)
            frames = [frame.to_ndarray(format="gray") for frame in container.decode(stream)]
        rows = []
        for i, idx in enumerate(kept_frames(len(frames), fps, max_fps)):
            picture = frames[idx]
            height, width = picture.shape
            box = {
                "x": 20.0 + idx, "y": height / 2, "width": 10.0 + i, "height": 20.0,
                "confidence": round(float(picture.mean()) / 255, 4), "class": "fake-object", "class_id": 7,
                "detection_id": f"{video.stem}-{idx}",
            }
            row: dict[str, Any] = {
                "predictions": {"image": {"width": width, "height": height}, "predictions": [box]},
                "object_count": 1,
                "bright": bool(picture.mean() > 100),
            }
            if self.frame_position == "frame_number":
                row["video_metadata"] = {"video_identifier": video.name, "frame_number": idx + 1, "fps": fps}
            elif self.frame_position == "frame_offset":
                row["frame_offset"] = idx
            rows.append(row)
        return rows


def kept_frames(count: int, fps: float, max_fps: float | None) -> list[int]:
    """InferencePipeline on a file with a max fps: accept a frame, then skip to the next after a stride
    of int(fps / max_fps), one more with probability of the fraction (streamvision calculate_video_file_stride)."""
    if not max_fps or max_fps >= fps:
        return list(range(count))
    rng, true_stride, kept, idx = random.Random(0), fps / max_fps, [], 0
    while idx < count:
        kept.append(idx)
        stride = max(int(true_stride), 1)
        idx += stride + (1 if rng.random() < true_stride - stride else 0)
    return kept


class _BatchHandler(_Handler):
    """Routes by path; the plumbing (faults, answers) is the hosted fake's."""

    api: FakeBatchApi  # type: ignore[assignment]

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path, query = split.path.rstrip("/") or "/", parse_qs(split.query)
        endpoint, params = self._route(method, path)
        body: Any = None
        if endpoint not in ("upload",):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        self.api.requests.append(RecordedRequest(method, endpoint or "unknown", split.path, query, body, dict(self.headers), self.path))
        if endpoint is None:
            return self._json(404, {"error": f"no route for {method} {split.path}"})
        fault = self._take_fault(endpoint)
        if fault and not fault.after_handling and self._apply(fault):
            return
        if endpoint not in ("upload", "download") and not self._key_ok(query.get("api_key", [None])[0]):
            return self._json(401, {"error": "Unauthorized: invalid api_key"})
        if params.get("ws", self.api.workspace) != self.api.workspace:
            return self._json(404, {"error": f"workspace {params['ws']} not found"})
        with self.api.lock:
            status, payload = getattr(self, f"_{endpoint}")(params, query, body)
        if fault and fault.after_handling and self._apply(fault):
            return
        self._json(status, payload)

    def _route(self, method: str, path: str) -> tuple[str | None, dict[str, str]]:
        if method == "GET" and path == "/":
            return "workspace", {}
        if method == "PUT" and path.startswith("/storage/"):
            return "upload", {}
        if method == "GET" and path.startswith("/downloads/"):
            return "download", {}
        staging, jobs = _STAGING.match(path), _JOBS.match(path)
        match = staging or jobs
        if match is None:
            return None, {}
        params = {k: v for k, v in match.groupdict().items() if v}
        rest = params.pop("rest", "")
        if staging:
            table = {("POST", "/upload/video"): "upload_url", ("GET", ""): "batch", ("GET", "/count"): "count",
                     ("GET", "/parts"): "parts", ("GET", "/list"): "list"}
        else:
            table = {("POST", ""): "create_job", ("GET", ""): "job", ("GET", "/stages"): "stages"}
        return table.get((method, rest)), params

    # Data Staging ----------------------------------------------------------------------------

    def _workspace(self, params: dict, query: dict, body: Any) -> tuple[int, Any]:
        return 200, {"workspace": self.api.workspace}

    def _upload_url(self, params: dict, query: dict, body: Any) -> tuple[int, Any]:
        batch_id, file_name = params["batch"], query.get("fileName", [""])[0]
        if not _ID.match(batch_id) or len(batch_id) > 64:
            return 400, {"error": f"invalid batch id {batch_id!r}: lowercase letters, digits, '-', '_', at most 64"}
        if not file_name or "/" in file_name or not file_name.lower().endswith(VIDEO_EXTENSIONS):
            return 400, {"error": f"invalid video file name {file_name!r}"}
        batch = self.api.batches.setdefault(batch_id, StagingBatch(batch_id, display_name=query.get("displayName", [batch_id])[0]))
        if batch.batch_type != "simple-batch" or batch.content_type != "videos":
            return 400, {"error": f"batch {batch_id} does not take video uploads"}
        signature = uuid.uuid4().hex
        self.api.signatures.add(signature)
        url = (f"{self._base()}/storage/{batch_id}/{file_name}?X-Goog-Algorithm=GOOG4-RSA-SHA256"
               f"&X-Goog-Expires=3600&X-Goog-SignedHeaders=host%3Bx-goog-content-length-range&X-Goog-Signature={signature}")
        return 200, {"status": "ok", "signedURLDetails": {"uploadURL": url, "method": "PUT", "extensionHeaders": SIGNED_HEADERS}}

    def _upload(self, params: dict, query: dict, body: Any) -> tuple[int, Any]:
        remaining = int(self.headers.get("Content-Length") or 0)
        signature = query.get("X-Goog-Signature", [""])[0]
        headers_ok = all(self.headers.get(k) == v for k, v in SIGNED_HEADERS.items())
        expired = self.api.expired_upload_urls > 0
        if signature not in self.api.signatures or not headers_ok or expired:
            self.rfile.read(remaining)
            if expired:
                self.api.expired_upload_urls -= 1
                return 400, {"error": "ExpiredToken: Invalid argument. The provided token has expired."}
            return 403, {"error": "SignatureDoesNotMatch: the request's headers do not match the signed ones"}
        batch_id, file_name = urlsplit(self.path).path.split("/")[2:4]
        target = self.api.root / "objects" / batch_id / file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                out.write(chunk)
                remaining -= len(chunk)
        if self.api.lost_uploads > 0:
            self.api.lost_uploads -= 1
            return 200, {}
        self.api.batches[batch_id].files[file_name] = StagedFile(file_name, target)
        return 200, {}

    def _batch(self, params: dict, query: dict, body: Any) -> tuple[int, Any]:
        batch = self.api.batches.get(params["batch"])
        if batch is None:
            return 404, {"error": f"batch {params['batch']} not found"}
        return 200, {"batch": {
            "displayName": batch.display_name or batch.batch_id, "batchId": batch.batch_id, "batchType": batch.batch_type,
            "batchContentType": batch.content_type, "createdDate": batch.created.isoformat(),
            "expiryDate": (batch.created + timedelta(days=7)).isoformat(),
        }}

    def _count(self, params: dict, query: dict, body: Any) -> tuple[int, Any]:
        batch = self.api.batches.get(params["batch"])
        if batch is None:
            return 404, {"error": f"batch {params['batch']} not found"}
        part = query.get("partName", [None])[0]
        return 200, {"count": sum(1 for f in batch.files.values() if part is None or f.part == part)}

    def _parts(self, params: dict, query: dict, body: Any) -> tuple[int, Any]:
        batch = self.api.batches.get(params["batch"])
        if batch is None or batch.batch_type != "multipart-batch":
            return 400 if batch else 404, {"error": f"batch {params['batch']} is not a multipart batch"}
        parts = sorted({f.part for f in batch.files.values() if f.part})
        return 200, {"batchParts": [{"partName": p, "partType": "sharded-batch", "contentType": "archives"} for p in parts]}

    def _list(self, params: dict, query: dict, body: Any) -> tuple[int, Any]:
        batch = self.api.batches.get(params["batch"])
        if batch is None:
            return 404, {"error": f"batch {params['batch']} not found"}
        part = query.get("partName", [None])[0]
        if batch.batch_type == "multipart-batch" and part is None:
            return 400, {"error": "partName is required to list a multipart batch"}
        files = [f for f in batch.files.values() if part is None or f.part == part]
        start = int(query.get("nextPageToken", ["0"])[0])
        page = files[start : start + self.api.page_size]
        listed = [
            {"downloadURL": f"{self._base()}/downloads/{batch.batch_id}/{f.name}?X-Goog-Expires=86400&X-Goog-Signature={uuid.uuid4().hex}",
             "fileName": f.name, "partName": f.part, "contentType": f.content_type}
            for f in page
        ]
        token = str(start + len(page)) if start + len(page) < len(files) else None
        return 200, {"filesMetadata": listed, "nextPageToken": token}

    def _download(self, params: dict, query: dict, body: Any) -> tuple[int, Any]:
        batch_id, name = urlsplit(self.path).path.split("/")[2:4]
        batch = self.api.batches.get(batch_id)
        staged = batch.files.get(name) if batch else None
        if staged is None:
            return 404, {"error": "NoSuchKey"}
        if self.api.expired_download_urls > 0:
            self.api.expired_download_urls -= 1
            return 400, {"error": "ExpiredToken: Invalid argument. The provided token has expired."}
        return 200, staged.path.read_bytes()

    # Batch Processing ------------------------------------------------------------------------

    def _create_job(self, params: dict, query: dict, body: Any) -> tuple[int, Any]:
        job_id = params["job"]
        if not _ID.match(job_id) or len(job_id) > 20:
            return 400, {"error": f"invalid job id {job_id!r}: lowercase letters, digits, '-', '_', at most 20"}
        problem = _definition_problem(body, self.api.workspace)
        if problem:
            return 400, {"error": problem}
        existing = self.api.jobs.get(job_id)
        if existing is not None:
            if existing.definition == body:
                return 200, {"status": "ok"}
            return 409, {"error": f"job {job_id} exists with another definition"}
        batch = self.api.batches.get(body["jobInput"]["batchId"])
        if batch is None or not batch.files:
            return 404, {"error": f"batch {body['jobInput']['batchId']} not found or empty"}
        job = Job(job_id, query.get("name", [job_id])[0], body, list(batch.files.values()))
        self.api.jobs[job_id] = job
        return 200, {"status": "ok"}

    def _job(self, params: dict, query: dict, body: Any) -> tuple[int, Any]:
        job = self.api.jobs.get(params["job"])
        if job is None:
            return 404, {"error": f"job {params['job']} not found"}
        self._advance(job)
        current = job.stages[-1]["processingStageName"] if job.stages else None
        return 200, {"job": {
            "jobId": job.job_id, "name": job.name, "jobDefinition": job.definition, "currentStage": current,
            "plannedStages": ["processing", "export"], "error": job.error, "isTerminal": job.terminal,
            "lastNotification": job.notification, "createdAt": job.created.isoformat(),
            "lastUpdate": datetime.now(UTC).isoformat(), "restartParametersOverride": [],
        }}

    def _stages(self, params: dict, query: dict, body: Any) -> tuple[int, Any]:
        job = self.api.jobs.get(params["job"])
        if job is None:
            return 404, {"error": f"job {params['job']} not found"}
        return 200, {"stages": job.stages}

    def _advance(self, job: Job) -> None:
        """One more status read: queued, then each stage runs for `polls_per_stage` reads."""
        if job.terminal or self.api.hold_jobs:
            return
        job.reads += 1
        step = job.reads // max(self.api.polls_per_stage, 1)
        if step >= 1 and not job.stages:
            job.stages.append(_stage("processing", "info"))
        if step >= 2 and job.stages[-1]["processingStageName"] == "processing" and job.stages[-1]["statusType"] == "info":
            self._finish_processing(job)
        if step >= 3 and len(job.stages) == 1 and not job.terminal:
            job.stages.append(_stage("export", "info"))
        if step >= 4 and len(job.stages) == 2:
            self._finish_export(job)

    def _finish_processing(self, job: Job) -> None:
        stage = job.stages[-1]
        limit = job.definition.get("processingTimeoutSeconds")
        needed = self.api.machine_seconds_per_video * len(job.videos)
        failure = self.api.fail_jobs or (
            f"Job exceeded its processing timeout: {needed:g} s of machine time needed, processingTimeoutSeconds={limit}"
            if limit and needed > limit else None
        )
        if failure:
            stage.update(statusType="error", notification={"type": "stage-failed", "message": failure})
            job.terminal, job.error = True, True
            job.notification = {"type": "job-failed", "message": failure}
            return
        output = StagingBatch(f"{job.job_id}-processing", content_type="mixed")
        max_fps = job.definition["processingSpecification"].get("maxVideoFPS")
        results = {
            video.name: self.api.rows_for(video.path, max_fps)
            for video in job.videos
            if not any(marker in video.name for marker in self.api.fail_videos)
        }
        files = {"results.jsonl": [{**row, "input_file": name} for name, rows in results.items() for row in rows]} if (
            self.api.shared_results) else {f"{Path(name).stem}.jsonl": rows for name, rows in results.items()}
        for file_name, rows in files.items():
            target = self.api.root / "objects" / output.batch_id / file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("".join(json.dumps(r) + "\n" for r in rows))
            output.files[target.name] = StagedFile(target.name, target, content_type="application/jsonl")
        self.api.batches[output.batch_id] = output
        failed = len(job.videos) - len(results)
        notification = {"type": "stage-completed", "message": f"{len(results)} videos processed, {failed} failed"}
        stage.update(statusType="success", outputBatches=[output.batch_id], notification=notification, tasksNumber=len(job.videos))

    def _finish_export(self, job: Job) -> None:
        processed = list(self.api.batches[f"{job.job_id}-processing"].files.values())
        export = StagingBatch(f"{job.job_id}-export", batch_type="multipart-batch", content_type="archives")
        size = max(self.api.videos_per_shard, 1)
        for number, start in enumerate(range(0, len(processed), size)):
            name = f"shard-{number:04d}.tar.gz"
            target = self.api.root / "objects" / export.batch_id / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(target, "w:gz") as archive:
                for result in processed[start : start + size]:
                    data = result.path.read_bytes()
                    member = tarfile.TarInfo(f"results/{result.name}")
                    member.size = len(data)
                    archive.addfile(member, io.BytesIO(data))
            export.files[name] = StagedFile(name, target, part="results", content_type="application/gzip")
        self.api.batches[export.batch_id] = export
        job.stages[-1].update(statusType="success", outputBatches=[export.batch_id], notification={"type": "stage-completed"})
        job.terminal = True
        job.notification = {"type": "job-completed", "message": "Job completed", "resultsBatches": [export.batch_id]}

    # Answers ---------------------------------------------------------------------------------

    def _json(self, status: int, payload: Any) -> None:
        if isinstance(payload, bytes):
            return self._raw(status, payload, "application/octet-stream")
        self._raw(status, json.dumps(payload).encode(), "application/json")


def _stage(name: str, status_type: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"processingStageId": f"{name}-stage", "processingStageName": name, "tasksNumber": 1, "outputBatches": [],
            "startTimestamp": now, "notification": {"type": "stage-started"}, "statusType": status_type,
            "lastEventTimestamp": now}


def _definition_problem(body: Any, workspace: str) -> str | None:
    """What inference-cli's WorkflowProcessingJobV1 would not have produced, for a video job."""
    if not isinstance(body, dict):
        return "expected a JSON job definition"
    if body.get("type") != "simple-video-processing-v1":
        return f"unsupported job type {body.get('type')!r}"
    job_input, compute, spec = body.get("jobInput") or {}, body.get("computeConfiguration") or {}, body.get("processingSpecification") or {}
    if job_input.get("type") != "staging-batch-input-v1" or not job_input.get("batchId"):
        return "jobInput must be a staging-batch-input-v1 with a batchId"
    if compute.get("type") != "compute-configuration-v2" or compute.get("machineType", "cpu") not in ("cpu", "gpu"):
        return "computeConfiguration must be compute-configuration-v2 with machineType cpu or gpu"
    if spec.get("type") != "workflows-processing-specification-v1" or not spec.get("workflowId"):
        return "processingSpecification must be workflows-processing-specification-v1 with a workflowId"
    if spec.get("workspace") != workspace:
        return f"processingSpecification.workspace must be {workspace}"
    fps = spec.get("maxVideoFPS")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0):
        return "maxVideoFPS must be a positive number"
    return None
