"""A local stand-in for Roboflow's hosted video API (both request forms), with fault injection.

It follows roboflow.md §1 (shared reference): the documented form (JSON `file_name`, `signed_url`,
`{input_url, infer_fps, models}`, `job_id`, numeric status, `output_signed_url`) and the recipe's
workflow form (query `file_name`, `signedUrl` + `fileUrl`, `{api_key, workspace, workflow,
video_url, fps}`, `jobId`, status "complete"/"failed"). Which form answers is decided by the shape
of each request, as a real server would see it. Paths work with and without a trailing slash.

Uploads are stored on disk (read in chunks); a finished job's results are computed by decoding
the uploaded video with PyAV at the requested fps: `frame_offset[i] = round(i * fps / infer_fps)`,
`time_offset = round(frame_offset / fps, 4)`, and one deterministic box per sampled frame whose
confidence is the frame's mean brightness. Errors are text bodies (the API documents no schema).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ENDPOINTS = ("signed_url", "upload", "submit", "status", "results")


@dataclass
class Fault:
    """What the next matching request gets instead of (or after) normal handling."""

    endpoint: str
    status: int | None = None  # answer with this status and a text body
    retry_after: str | None = None
    malformed: bool = False  # answer 200 with a body that is not JSON
    drop: bool = False  # close the connection without an answer
    delay_s: float = 0.0  # wait before answering (client read timeouts)
    after_handling: bool = False  # do the work first (create the job), then fail: an ambiguous outcome
    body: str = "fault injected"


@dataclass
class Job:
    job_id: str
    form: str
    upload: Path
    infer_fps: int
    results_key: str
    polls_left: int
    failed_message: str | None = None
    results_url_serial: int = 0


@dataclass
class RecordedRequest:
    method: str
    endpoint: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]
    raw_url: str


@dataclass
class FakeVideoApi:
    root: Path
    api_key: str
    polls_until_done: int = 1  # "running" answers before a job is done
    hold_jobs: bool = False  # keep every job running until released
    null_frames: tuple[int, ...] = ()  # sampled-frame indexes whose result is null (failed on the service)
    results_gone: bool = False  # every results download is 404
    expired_results_downloads: int = 0  # this many results downloads answer 400 ExpiredToken
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)
    uploads: dict[str, Path] = field(default_factory=dict)
    max_upload_chunk: int = 0

    def start(self) -> FakeVideoApi:
        (self.root / "uploads").mkdir(parents=True, exist_ok=True)
        handler = type("Handler", (_Handler,), {"api": self})
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

    def release_jobs(self) -> None:
        self.hold_jobs = False

    def fail_job(self, job_id: str, message: str) -> None:
        self.jobs[job_id].failed_message = message

    def count(self, endpoint: str) -> int:
        return Counter(r.endpoint for r in self.requests)[endpoint]

    def results_for(self, job: Job) -> dict[str, Any]:
        import av

        with av.open(str(job.upload)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate)
            frames = [frame.to_ndarray(format="gray") for frame in container.decode(stream)]
        step = fps / job.infer_fps
        offsets = []
        while round(len(offsets) * step) < len(frames):
            offsets.append(round(len(offsets) * step))
        elements: list[Any] = []
        for i, offset in enumerate(offsets):
            if i in self.null_frames:
                elements.append(None)
                continue
            picture = frames[offset]
            height, width = picture.shape
            elements.append(
                {
                    "time": 0.0123,
                    "image": {"width": width, "height": height},
                    "predictions": [
                        {
                            "x": 20.0 + offset,
                            "y": height / 2,
                            "width": 10.0 + i,
                            "height": 20.0,
                            "confidence": round(float(picture.mean()) / 255, 4),
                            "class": "fake-object",
                            "class_id": 7,
                        }
                    ],
                }
            )
        return {"frame_offset": offsets, "time_offset": [round(o / fps, 4) for o in offsets], job.results_key: elements}


class _Handler(BaseHTTPRequestHandler):
    api: FakeVideoApi
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path, query = split.path.rstrip("/") or "/", parse_qs(split.query)
        endpoint = {
            ("POST", "/video_upload_signed_url"): "signed_url",
            ("POST", "/videoinfer"): "submit",
            ("GET", "/videoinfer"): "status",
        }.get((method, path))
        if endpoint is None and method == "PUT" and path.startswith("/storage/"):
            endpoint = "upload"
        if endpoint is None and method == "GET" and path.startswith("/results/"):
            endpoint = "results"
        body: Any = None
        if endpoint != "upload":
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        self.api.requests.append(
            RecordedRequest(method, endpoint or "unknown", split.path, query, body, dict(self.headers), self.path)
        )
        if endpoint is None:
            return self._text(404, f"no route for {method} {split.path}")
        fault = self._take_fault(endpoint)
        if fault and not fault.after_handling and self._apply(fault):
            return
        handler = getattr(self, f"_{endpoint}")
        status, payload = handler(query, body)
        if fault and fault.after_handling and self._apply(fault):
            return
        if isinstance(payload, str):
            return self._text(status, payload)
        self._json(status, payload)

    # Endpoints -------------------------------------------------------------------------------

    def _signed_url(self, query: dict, body: Any) -> tuple[int, Any]:
        if not self._key_ok(query.get("api_key", [None])[0]):
            return 401, "Unauthorized: invalid api_key"
        workflow_form = "file_name" in query
        file_name = query["file_name"][0] if workflow_form else (body or {}).get("file_name")
        if not file_name:
            return 400, "file_name is required"
        uid = uuid.uuid4().hex[:12]
        signed = f"{self._base()}/storage/{uid}/{file_name}?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Expires=604800&X-Goog-Signature={uuid.uuid4().hex}"
        if workflow_form:
            return 200, {"signedUrl": signed, "fileUrl": f"{self._base()}/storage/{uid}/{file_name}"}
        return 200, {"signed_url": signed}

    def _upload(self, query: dict, body: Any) -> tuple[int, Any]:
        if "X-Goog-Signature" not in query:
            return 403, "SignatureDoesNotMatch"
        uid, name = self.path.split("?")[0].split("/")[2:4]
        target = self.api.root / "uploads" / f"{uid}-{name}"
        remaining = int(self.headers.get("Content-Length") or 0)
        with open(target, "wb") as out:
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                self.api.max_upload_chunk = max(self.api.max_upload_chunk, len(chunk))
                out.write(chunk)
                remaining -= len(chunk)
        self.api.uploads[uid] = target
        return 200, ""

    def _submit(self, query: dict, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, "expected a JSON body"
        if "workflow" in body:  # the recipe's workflow form
            if not self._key_ok(body.get("api_key")):
                return 401, "Unauthorized: invalid api_key"
            missing = [k for k in ("workspace", "workflow", "video_url", "fps") if not body.get(k)]
            url, fps, key, form = body.get("video_url"), body.get("fps"), body.get("workflow"), "workflow"
        else:
            if not self._key_ok(query.get("api_key", [None])[0]):
                return 401, "Unauthorized: invalid api_key"
            missing = [k for k in ("input_url", "infer_fps", "models") if not body.get(k)]
            url, fps, form = body.get("input_url"), body.get("infer_fps"), "models"
            key = (body.get("models") or [{}])[0].get("model_id")
        if missing:
            return 400, f"missing fields: {', '.join(missing)}"
        if not isinstance(fps, int) or fps < 1:
            return 400, "fps must be a whole number >= 1"
        upload = self.api.uploads.get(urlsplit(url).path.split("/")[2] if "/storage/" in url else "")
        if upload is None:
            return 400, f"no uploaded video at {urlsplit(url).path}"
        job = Job(str(uuid.uuid4()), form, upload, fps, key, self.api.polls_until_done)
        self.api.jobs[job.job_id] = job
        if form == "workflow":
            return 200, {"jobId": job.job_id}
        return 200, {"job_id": job.job_id, "message": "This endpoint will create videojob"}

    def _status(self, query: dict, body: Any) -> tuple[int, Any]:
        if not self._key_ok(query.get("api_key", [None])[0]):
            return 401, "Unauthorized: invalid api_key"
        job_id = (query.get("job_id") or query.get("jobId") or [None])[0]
        job = self.api.jobs.get(job_id)
        if job is None:
            return 404, f"NOT FOUND: job {job_id}"
        numeric = "job_id" in query
        if job.failed_message:
            return 200, {"status": 2, "message": job.failed_message} if numeric else {"status": "failed", "message": job.failed_message}
        if self.api.hold_jobs or job.polls_left > 0:
            job.polls_left -= 0 if self.api.hold_jobs else 1
            return 200, {"status": 1, "progress": 0.5} if numeric else {"status": "running", "progress": 0.5}
        job.results_url_serial += 1
        output = f"{self._base()}/results/{job.job_id}?serial={job.results_url_serial}&X-Goog-Signature={uuid.uuid4().hex}"
        return 200, {"status": 0 if numeric else "complete", "output_signed_url": output}

    def _results(self, query: dict, body: Any) -> tuple[int, Any]:
        job = self.api.jobs.get(self.path.split("?")[0].split("/")[2])
        if job is None or self.api.results_gone:
            return 404, "NoSuchKey: The specified key does not exist."
        if self.api.expired_results_downloads > 0:
            self.api.expired_results_downloads -= 1
            return 400, "ExpiredToken: Invalid argument. The provided token has expired."
        return 200, self.api.results_for(job)

    # Plumbing --------------------------------------------------------------------------------

    def _take_fault(self, endpoint: str) -> Fault | None:
        for fault in list(self.api.faults):
            if fault.endpoint == endpoint:
                self.api.faults.remove(fault)
                return fault
        return None

    def _apply(self, fault: Fault) -> bool:
        """Send the fault's answer; False means no answer replaces the normal one (a pure delay)."""
        self.close_connection = True  # an unread request body must not leak into the next request
        if fault.delay_s:
            time.sleep(fault.delay_s)
        if fault.drop:
            self.close_connection = True
            self.connection.close()
            return True
        if fault.malformed:
            self._raw(200, b"<html>502 upstream hiccup</html>", "text/html")
            return True
        if fault.status:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._text(fault.status, fault.body, extra)
            return True
        return False

    def _key_ok(self, key: str | None) -> bool:
        return key == self.api.api_key

    def _base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _json(self, status: int, payload: Any) -> None:
        self._raw(status, json.dumps(payload).encode(), "application/json")

    def _text(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._raw(status, text.encode(), "text/plain", headers)

    def _raw(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
