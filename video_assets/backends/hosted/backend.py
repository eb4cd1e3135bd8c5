"""Hosted backend: upload a video to a signed URL, submit one job, poll it, read its per-frame results.

Each step is idempotent through the job ledger, so the `uploaded_video` and `inference_job`
assets, `frame_predictions`, a retry and a re-run after a crash all share one job per
(video sha256, target, fps): the job is submitted once, and only `force_resubmit` submits again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field

from video_assets.backends.base import (
    STARTUP_ALLOWANCE_S,
    BackendError,
    BackendIdentity,
    BackendKind,
    BuildContext,
    FramePrediction,
    PredictionSink,
    VideoBackend,
)
from video_assets.backends.hosted.contract import (
    ContractError,
    JobStatus,
    Target,
    parse_job_id,
    parse_results,
    parse_signed_upload,
    parse_status,
    sampled_frames,
)
from video_assets.backends.hosted.ledger import NAME as LEDGER_NAME
from video_assets.backends.hosted.ledger import SCHEMA as LEDGER_SCHEMA
from video_assets.backends.hosted.ledger import BudgetExceeded, JobKey, JobLedger, JobRow, this_process
from video_assets.backends.ledger_db import LedgerDatabase
from video_assets.backends.self_hosted import WorkflowConfig
from video_assets.ingest.probe import VideoProbe
from video_assets.roboflow import DEFAULT_API_URL
from video_assets.roboflow.http import RetryPolicy, RoboflowHttp, RoboflowRequestError

# peers.md §1.1: serverless RF-DETR-S is about 0.2 credits per 1,000 images; other models differ.
CREDITS_PER_1000_FRAMES = 0.2
UPLOAD_REUSE = timedelta(days=6)  # Roboflow keeps uploaded videos for a week
_EXPIRED_URL_STATUSES = {400, 401, 403, 404, 410}


@dataclass(frozen=True)
class HostedOptions:
    api_url: str
    target: Target
    fps: int
    poll_s: float
    timeout_s: float
    open_ledger: Callable[[str, str], LedgerDatabase]  # (name, schema) -> the ledger's database
    budget_frames: int | None = None
    force_resubmit: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class SpendEstimate:
    frames: int
    fps: int
    credits: float

    def describe(self) -> str:
        return (
            f"{self.frames} frames at {self.fps} fps "
            f"(about {self.credits:.4f} credits at {CREDITS_PER_1000_FRAMES} per 1,000 frames; the model decides the real price)"
        )


class HostedConfig(WorkflowConfig):
    """The hosted video API: a saved workflow (workspace + workflow_id) or a model version."""

    api_url: str = Field(
        default=DEFAULT_API_URL,
        description="Base URL of the hosted video API.",
        json_schema_extra={"env": "ROBOFLOW_API_URL"},
    )
    model: str | None = Field(
        default=None,
        description="project/version: the documented models form instead of a workflow.",
        json_schema_extra={"env": "ROBOFLOW_MODEL"},
    )
    hosted_fps: int = Field(
        default=5,
        ge=1,
        le=120,
        description="Frames per second the service samples (capped at the video's).",
        json_schema_extra={"env": "VIDEO_ASSETS_HOSTED_FPS"},
    )
    poll_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between job status checks (the API asks for at most one a minute).",
        json_schema_extra={"env": "VIDEO_ASSETS_POLL_SECONDS"},
    )
    hosted_timeout_seconds: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="Stop waiting for one job after this long; a re-run resumes it.",
        json_schema_extra={"env": "VIDEO_ASSETS_HOSTED_TIMEOUT"},
    )
    budget_frames: int | None = Field(
        default=None,
        ge=0,
        description="Refuse a submission that takes all submitted frames above this.",
        json_schema_extra={"env": "VIDEO_ASSETS_HOSTED_BUDGET_FRAMES"},
    )
    force_resubmit: bool = Field(
        default=False, description="Submit again although the ledger has a job for this video (pays again)."
    )
    request_attempts: int = Field(default=5, ge=1, description="Attempts per HTTP call (429, 5xx, connection errors).")
    backoff_seconds: float = Field(
        default=2.0, ge=0, description="First retry wait, doubled per attempt (Retry-After wins)."
    )
    request_timeout_seconds: float = Field(default=60.0, gt=0, description="Read timeout of one HTTP call.")

    def retry_policy(self) -> RetryPolicy:
        """How each HTTP call to Roboflow is retried."""
        return RetryPolicy(
            attempts=self.request_attempts, backoff_s=self.backoff_seconds, read_timeout_s=self.request_timeout_seconds
        )


class HostedBackend(VideoBackend):
    """The hosted video API for one target (saved workflow or model version)."""

    def __init__(
        self,
        api_key: str | None,
        options: HostedOptions,
        submitted_by: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.options = options
        self._api_key = api_key
        self.submitted_by = submitted_by or this_process()
        self.sleep = sleep

    @cached_property
    def ledger(self) -> JobLedger:
        """Opened on first use, so building the backend to ask its identity has no side effects."""
        return JobLedger(self.options.open_ledger(LEDGER_NAME, LEDGER_SCHEMA))

    @property
    def api_key(self) -> str:
        if not self._api_key:
            raise BackendError(
                "The hosted backend needs an API key: set ROBOFLOW_API_KEY in the environment of the "
                "Dagster code location and its runs (it is read through dagster.EnvVar and never stored).",
                permanent=True,
            )
        return self._api_key

    # What is run, and what it costs -----------------------------------------------------------

    def identity(self) -> BackendIdentity:
        return BackendIdentity(KIND.name, self.options.target.identity)

    def fps_for(self, video: VideoProbe) -> int:
        """The requested fps, capped at the video's own (the API returns nothing above it)."""
        return max(1, min(self.options.fps, math.floor(video.media.fps)))

    def key(self, video: VideoProbe) -> JobKey:
        return JobKey(self.options.api_url.rstrip("/"), video.sha256, self.options.target.identity, self.fps_for(video))

    def frames_expected(self, video: VideoProbe) -> int:
        return sampled_frames(video.media.frame_count, video.media.fps, self.fps_for(video))

    def max_runtime_s(self, video: VideoProbe) -> float:
        """Waiting for the job (VIDEO_ASSETS_HOSTED_TIMEOUT), then fetching and writing its results."""
        return STARTUP_ALLOWANCE_S + self.options.timeout_s + 2 * self.options.retry.read_timeout_s

    def estimate(self, video: VideoProbe) -> SpendEstimate:
        frames = self.frames_expected(video)
        return SpendEstimate(frames, self.fps_for(video), round(frames * CREDITS_PER_1000_FRAMES / 1000, 6))

    def job(self, video: VideoProbe) -> JobRow | None:
        return self.ledger.get(self.key(video))

    # Steps ------------------------------------------------------------------------------------

    def upload(self, video: VideoProbe, log: logging.Logger) -> JobRow:
        """Upload the file unless the ledger already has it (or a job for it)."""
        key = self.key(video)
        row = self._reopened_if_forced(key, log)
        if row is not None and (row.state != "uploaded" or _fresh(row.uploaded_at)):
            log.info(f"{video.path}: already uploaded at {row.uploaded_at}; not uploading again")
            return row
        http = self._http(log)
        request = self.options.target.signed_url_request(self.api_key, Path(video.path).name)
        try:
            signed = parse_signed_upload(self._call(http, "request an upload URL", "POST", request))
            started = time.monotonic()
            http.put_file(
                f"upload {video.path}", signed.upload_url, Path(video.path), self.options.target.upload_content_type()
            )
        except RoboflowRequestError as exc:
            raise BackendError(
                f"Uploading {video.path} failed: {exc}. Nothing was submitted, so nothing is billed; "
                "re-run to upload again (a 401/403 means ROBOFLOW_API_KEY was refused or the upload URL expired; "
                "the service accepts mp4, avi, mkv and webm)."
            ) from None
        except ContractError as exc:
            raise BackendError(f"Uploading {video.path} failed: {http.redact(exc)}") from None
        log.info(
            f"{video.path}: uploaded {video.bytes} bytes in {time.monotonic() - started:.1f} s to {without_query(signed.upload_url)}"
        )
        self.ledger.record_upload(key, video.video_id, signed.video_url, signed.upload_url)
        return self._recorded(key)

    def submit(self, video: VideoProbe, log: logging.Logger) -> JobRow:
        """Submit the job once; afterwards return the ledger's job instead of submitting again."""
        key = self.key(video)
        row = self._reopened_if_forced(key, log)
        if row is None or row.state == "uploaded":
            row = self.upload(video, log)
        if row.state in ("submitted", "done"):
            log.info(f"{video.path}: job {row.job_id} was submitted at {row.submitted_at}; not submitting again")
            return row
        if row.state == "submitting":
            raise BackendError(self._unknown_outcome_message(video, row), permanent=True)
        if row.state == "failed":
            raise BackendError(
                f"Hosted job {row.job_id} for {video.path} failed: {row.message}. It is not resubmitted automatically; "
                f"to try again, re-run with {FORCE_HINT}.",
                permanent=True,
            )
        estimate = self.estimate(video)
        log.info(f"{video.path}: spend estimate {estimate.describe()}")
        try:
            self.ledger.reserve_submission(key, estimate.frames, self.submitted_by, self.options.budget_frames)
        except BudgetExceeded as exc:
            raise BackendError(
                f"Not submitting {video.path}: it needs {exc.asked} frames and {exc.used} of the budget of "
                f"{exc.budget} frames (VIDEO_ASSETS_HOSTED_BUDGET_FRAMES) are already used. Raise the budget, or lower "
                "VIDEO_ASSETS_HOSTED_FPS, to process it.",
                permanent=True,
            ) from None
        http = self._http(log)
        request = self.options.target.submit_request(self.api_key, row.video_url or "", estimate.fps)
        try:
            job_id = parse_job_id(self._call(http, "submit the job", "POST", request, idempotent=False))
        except RoboflowRequestError as exc:
            if exc.ambiguous:
                self.ledger.record_message(key, http.redact(exc))
                raise BackendError(self._unknown_outcome_message(video, self._recorded(key)), permanent=True) from None
            self.ledger.record_rejected_submission(key, http.redact(exc))
            raise BackendError(
                f"The hosted API refused the job for {video.path}: {exc}. No job was created; fix the cause "
                "(API key, workspace/workflow or model, fps) and re-run.",
                permanent=True,
            ) from None
        except ContractError as exc:  # a 2xx whose job id we cannot read: a job probably exists
            self.ledger.record_message(key, http.redact(exc))
            raise BackendError(self._unknown_outcome_message(video, self._recorded(key)), permanent=True) from None
        self.ledger.record_job(key, job_id)
        log.info(f"{video.path}: submitted job {job_id} ({self.options.target.identity})")
        return self._recorded(key)

    def wait(self, video: VideoProbe, log: logging.Logger) -> JobStatus:
        """Poll the recorded job until it is done (or failed, or the overall timeout passes)."""
        row = self.submit(video, log)
        http = self._http(log)
        deadline = time.monotonic() + self.options.timeout_s
        last_progress = object()
        while True:
            status = self._poll(http, video, row)
            if status.state == "done":
                self.ledger.record_outcome(row.key, "done")
                return status
            if status.state == "failed":
                message = http.redact(status.message)
                self.ledger.record_outcome(row.key, "failed", message)
                raise BackendError(
                    f"Hosted job {row.job_id} for {video.path} failed: {message}. It is not resubmitted "
                    f"automatically; to try again, re-run with {FORCE_HINT}.",
                    permanent=True,
                )
            if status.progress != last_progress:
                log.info(
                    f"{video.path}: job {row.job_id} running"
                    + (f" (progress {status.progress})" if status.progress is not None else "")
                )
                last_progress = status.progress
            if time.monotonic() + self.options.poll_s > deadline:
                raise BackendError(
                    f"Hosted job {row.job_id} for {video.path} is still running after {self.options.timeout_s:g} s "
                    "(VIDEO_ASSETS_HOSTED_TIMEOUT). It stays recorded: re-run to resume polling the same job; "
                    "nothing is submitted again."
                )
            self.sleep(self.options.poll_s)

    def results(self, video: VideoProbe, log: logging.Logger) -> tuple[list[FramePrediction], int]:
        """The job's frames (sorted, failed ones left out) and how many frames the service failed."""
        status = self.wait(video, log)
        row = self._recorded(self.key(video))
        http = self._http(log)
        for attempt in (1, 2):
            try:
                body = http.json("download the results", "GET", self._output_url(status, row), idempotent=True)
                return parse_results(body, self.options.target.results_key)
            except RoboflowRequestError as exc:
                if attempt == 1 and exc.status in _EXPIRED_URL_STATUSES:
                    log.warning(
                        f"{video.path}: the results URL was refused ({exc}); asking job {row.job_id} for a fresh one"
                    )
                    status = self._poll(http, video, row)
                    continue
                raise BackendError(
                    f"The results of hosted job {row.job_id} for {video.path} could not be downloaded: {exc}. "
                    "The job stays recorded, so a re-run fetches them again without a new job; if the service no "
                    f"longer has them (404 after a fresh URL), re-run with {FORCE_HINT} to process the video again."
                ) from None
            except ContractError as exc:
                raise BackendError(
                    f"The results of hosted job {row.job_id} for {video.path} are unreadable: {http.redact(exc)}"
                ) from None
        raise AssertionError("unreachable")

    def predict(self, video: VideoProbe, sink: PredictionSink, log: logging.Logger) -> None:
        frames, failed = self.results(video, log)
        for frame in frames:
            sink.add_frame(frame)
        if failed:
            log.warning(
                f"{video.path}: the service reported {failed} sampled frame(s) as failed (null); they have no frame row"
            )

    # Helpers ----------------------------------------------------------------------------------

    def _recorded(self, key: JobKey) -> JobRow:
        """The ledger's row of a video this backend has just written a row for."""
        row = self.ledger.get(key)
        if row is None:
            raise RuntimeError(f"the job ledger has no row for {key.describe()}")
        return row

    def _reopened_if_forced(self, key: JobKey, log: logging.Logger) -> JobRow | None:
        row = self.ledger.get(key)
        if (
            not self.options.force_resubmit
            or row is None
            or row.state == "uploaded"
            or row.submitted_by == self.submitted_by
        ):
            return row
        log.warning(
            f"force_resubmit: job {row.job_id or '(unknown id)'} ({row.state}) is set aside; the video is submitted again"
        )
        self.ledger.reopen(key)
        return self._recorded(key)

    def _poll(self, http: RoboflowHttp, video: VideoProbe, row: JobRow) -> JobStatus:
        request = self.options.target.status_request(self.api_key, row.job_id or "")
        try:
            return parse_status(self._call(http, f"check job {row.job_id}", "GET", request))
        except RoboflowRequestError as exc:
            hint = " The service does not know this job (it may have expired)." if exc.status == 404 else ""
            raise BackendError(
                f"Checking hosted job {row.job_id} for {video.path} failed: {exc}.{hint} The job stays recorded; "
                f"re-run to check it again (no new job is submitted), or re-run with {FORCE_HINT} to submit anew."
            ) from None

    def _output_url(self, status: JobStatus, row: JobRow) -> str:
        if not status.output_url:
            raise ContractError(f"job {row.job_id} is done but its status has no output_signed_url")
        return status.output_url

    def _call(self, http: RoboflowHttp, what: str, method: str, request: dict, idempotent: bool = True) -> dict:
        url = self.options.api_url.rstrip("/") + request["path"]
        return http.json(
            what, method, url, idempotent=idempotent, params=request.get("params"), json=request.get("json")
        )

    def _http(self, log: logging.Logger) -> RoboflowHttp:
        return RoboflowHttp(self.api_key, self.options.retry, log, sleep=self.sleep)

    def _unknown_outcome_message(self, video: VideoProbe, row: JobRow) -> str:
        return (
            f"A hosted job for {video.path} ({row.key.describe()}) may exist: its submission was started at "
            f"{row.submitted_at} by {row.submitted_by}, but no job id was recorded ({row.message or 'the process stopped during the request'}). "
            "It is not submitted again automatically, to avoid paying twice. Check the jobs and usage of your "
            f"Roboflow workspace; if no job was created, re-run with {FORCE_HINT}."
        )


FORCE_HINT = "run config resources.backend.config.force_resubmit: true"


def without_query(url: str) -> str:
    """A URL fit to show: signed URLs carry credentials in their query string."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _fresh(uploaded_at: str | None) -> bool:
    if not uploaded_at:
        return False
    return datetime.now(UTC) - datetime.fromisoformat(uploaded_at) < UPLOAD_REUSE


def hosted_target(config: HostedConfig) -> Target:
    """A model version when one is set, else the saved workflow; an inline spec cannot run there."""
    if config.model:
        try:
            return Target.for_model(config.model)
        except ValueError as exc:
            raise BackendError(str(exc)) from None
    if config.workspace and config.workflow_id:
        return Target.for_workflow(config.workspace, config.workflow_id)
    raise BackendError(
        "The hosted backend needs a saved workflow (ROBOFLOW_WORKSPACE and ROBOFLOW_WORKFLOW) or a model "
        "version (ROBOFLOW_MODEL=project/version); an inline workflow file cannot run on the hosted API."
    )


def build_hosted(config: HostedConfig, context: BuildContext) -> HostedBackend:
    options = HostedOptions(
        api_url=config.api_url,
        target=hosted_target(config),
        fps=config.hosted_fps,
        poll_s=config.poll_seconds,
        timeout_s=config.hosted_timeout_seconds,
        open_ledger=context.open_ledger,
        budget_frames=config.budget_frames,
        force_resubmit=config.force_resubmit,
        retry=config.retry_policy(),
    )
    return HostedBackend(context.api_key, options, submitted_by=context.run_id)


def _hosted_steps() -> list:
    from video_assets.backends.hosted.assets import inference_job, uploaded_video

    return [uploaded_video, inference_job]


KIND = BackendKind(
    name="hosted",
    description="Roboflow's hosted video API: upload, one job, poll, fetch results; sampled frames",
    config=HostedConfig,
    build=build_hosted,
    steps=_hosted_steps,
)
