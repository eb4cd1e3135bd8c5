"""Batch backend: Roboflow Batch Processing, many videos per job, each video's partition on its own.

Every video run joins its video to the open group of its job spec, or opens one (ledger.py). When the
group's window ends (or it is full), one member run takes its lease and drives it: uploads every
member into the group's Data Staging batch (signed URL + extension headers), checks that the batch
lists them, records the submission, and starts one `simple-video-processing-v1` job. Every member run
then waits through the ledger: one of them polls the job (and its stages) per interval, the others
read what it recorded. Once the job is done, each run downloads the output batch (once per machine),
finds its own video's results file and writes its own partition, with the same frame_idx and
time_offset_s as the other backends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

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
from video_assets.backends.batch.api import BatchApi
from video_assets.backends.batch.contract import (
    MACHINE_TYPES,
    ContractError,
    JobSettings,
    frames_from_rows,
    job_definition,
    results_batch,
)
from video_assets.backends.batch.exports import ExportCache, video_rows
from video_assets.backends.batch.ledger import (
    DRIVEN,
    REJOINABLE,
    BatchLedger,
    Group,
    JoinRequest,
    LeaseLost,
    Member,
    SqlBatchLedger,
)
from video_assets.backends.batch.ledger import NAME as LEDGER_NAME
from video_assets.backends.batch.ledger import SCHEMA as LEDGER_SCHEMA
from video_assets.backends.hosted.backend import FORCE_HINT, HostedConfig, without_query
from video_assets.backends.hosted.contract import sampled_frames
from video_assets.backends.ledger_db import BudgetExceeded, LedgerDatabase, this_process
from video_assets.backends.self_hosted import DEFAULT_DETECTIONS_OUTPUT
from video_assets.ingest.keys import readable_name
from video_assets.ingest.probe import VideoProbe
from video_assets.roboflow.http import RetryPolicy, RoboflowHttp, RoboflowRequestError

# Roboflow's published video benchmarks (inference docs, batch_processing/about.md): YOLOv8n object
# detection, 0.01 credit per 1,000 frames on GPU; with tracking on CPU, 0.05. Billing is machine time
# (1 credit per CPU hour, 4 per GPU hour), so the workflow decides the real price.
CREDITS_PER_1000_FRAMES = {"cpu": 0.05, "gpu": 0.01}
EXPORTS_FOLDER = "batch_exports"
LONGEST_PAUSE_S = 5.0  # between two looks at the ledger
PAST_SUBMISSION = ("submitting", "submitted", "done", "failed")
_EXPIRED_UPLOAD_URL = {400, 401, 403}
_REFUSED_FILE = {400, 413, 415, 422}  # after a fresh URL: this file will not be accepted as it is
_NOT_REFUSALS = {408, 409, 429}  # a 4xx that does not mean "this job will never be accepted"


class BatchConfig(HostedConfig):
    """Batch Processing runs a saved workflow (ROBOFLOW_WORKSPACE, ROBOFLOW_WORKFLOW) at hosted_fps at most;
    the API URL, poll interval, timeout, budget and retries are the hosted backend's settings."""

    batch_machine_type: str = Field(
        default="cpu",
        description="cpu | gpu: the machines the job runs on (1 or 4 credits per machine hour).",
        json_schema_extra={"env": "VIDEO_ASSETS_BATCH_MACHINE_TYPE"},
    )
    batch_workers_per_machine: int | None = Field(
        default=None,
        ge=1,
        description="Workflow workers per machine (the service's default when unset); more is faster but needs more memory.",
        json_schema_extra={"env": "VIDEO_ASSETS_BATCH_WORKERS_PER_MACHINE"},
    )
    batch_window_seconds: float = Field(
        default=300.0,
        ge=0,
        description="Videos that become ready within this many seconds of the first share one staging batch and job.",
        json_schema_extra={"env": "VIDEO_ASSETS_BATCH_WINDOW"},
    )
    batch_max_videos: int = Field(
        default=1000,
        ge=1,
        description="At most this many videos per job (Roboflow suggests at most 1,000 per batch).",
        json_schema_extra={"env": "VIDEO_ASSETS_BATCH_MAX_VIDEOS"},
    )
    batch_lease_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A run preparing a batch that goes silent this long (one upload may take that long) is presumed "
        "dead, and another run of the batch takes over.",
        json_schema_extra={"env": "VIDEO_ASSETS_BATCH_LEASE"},
    )
    batch_max_runtime_seconds: int | None = Field(
        default=None,
        ge=1,
        description="The job's processingTimeoutSeconds: machine time across all its workers before Roboflow stops it.",
        json_schema_extra={"env": "VIDEO_ASSETS_BATCH_MAX_RUNTIME"},
    )


@dataclass(frozen=True)
class BatchOptions:
    api_url: str
    job: JobSettings
    window_s: float
    capacity: int
    poll_s: float
    timeout_s: float
    state_dir: Path  # where this machine keeps downloaded exports
    open_ledger: Callable[[str, str], LedgerDatabase]  # (name, schema) -> the ledger's database
    budget_frames: int | None
    force_resubmit: bool
    lease_s: float
    retry: RetryPolicy
    detections_output: str = DEFAULT_DETECTIONS_OUTPUT


class BatchBackend(VideoBackend):
    def __init__(
        self,
        api_key: str | None,
        options: BatchOptions,
        owner: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ):
        self.options = options
        self._api_key = api_key
        self.owner = owner or this_process()  # the run: its steps and frame_predictions share leases
        self.sleep = sleep
        self.clock = clock

    @cached_property
    def ledger(self) -> BatchLedger:
        """Opened on first use, so building the backend to ask its identity has no side effects."""
        return SqlBatchLedger(self.options.open_ledger(LEDGER_NAME, LEDGER_SCHEMA))

    @cached_property
    def exports(self) -> ExportCache:
        return ExportCache(self.options.state_dir / EXPORTS_FOLDER)

    @property
    def api_key(self) -> str:
        if not self._api_key:
            raise BackendError(
                "The batch backend needs an API key: set ROBOFLOW_API_KEY in the environment of the Dagster code "
                "location and its runs (it is read through dagster.EnvVar and never stored).",
                permanent=True,
            )
        return self._api_key

    # What is run, and what it costs -----------------------------------------------------------

    def identity(self) -> BackendIdentity:
        return BackendIdentity(KIND.name, f"{self.options.job.workspace}/{self.options.job.workflow_id}@latest")

    @property
    def spec(self) -> str:
        """Videos share a job, and a video is processed once, per (API, workspace, workflow, fps)."""
        job = self.options.job
        return "|".join((self.options.api_url.rstrip("/"), job.workspace, job.workflow_id, str(job.max_video_fps)))

    def sampled_fps(self, video: VideoProbe) -> float:
        """maxVideoFPS caps the rate; a video slower than that keeps every frame."""
        return min(float(self.options.job.max_video_fps), video.media.fps)

    def frames_expected(self, video: VideoProbe) -> int:
        return sampled_frames(video.media.frame_count, video.media.fps, self.sampled_fps(video))

    def credits(self, frames: int) -> float:
        return round(frames * CREDITS_PER_1000_FRAMES[self.options.job.machine_type] / 1000, 6)

    def max_runtime_s(self, video: VideoProbe) -> float:
        """The window, waiting for the job (VIDEO_ASSETS_HOSTED_TIMEOUT), then downloading its results."""
        return (
            STARTUP_ALLOWANCE_S + self.options.window_s + self.options.timeout_s + 2 * self.options.retry.read_timeout_s
        )

    def member(self, video: VideoProbe) -> Member | None:
        return self.ledger.member(self.spec, video.sha256)

    # Steps ------------------------------------------------------------------------------------

    def join(self, video: VideoProbe, log: logging.Logger) -> Member:
        """The video's place in a group: kept once it has one, so a retry or re-run never submits it again."""
        known = self.member(video)
        if known and self._forced(known):
            log.warning(
                f"force_resubmit: {video.path} leaves job {self.ledger.group(known.group_id or '').job_id}; it is submitted again"
            )
            self.ledger.set_aside(self.spec, video.sha256, self.owner)
        frames = self.frames_expected(video)
        request = JoinRequest(
            spec=self.spec,
            sha256=video.sha256,
            video_id=video.video_id,
            path=video.path,
            file_name=staged_name(video),
            frames=frames,
            settings=self.options.job.to_json(),
            window_s=self.options.window_s,
            capacity=self.options.capacity,
            budget_frames=self.options.budget_frames,
        )
        try:
            member = self.ledger.join(request, self.clock())
        except BudgetExceeded as exc:
            raise BackendError(
                f"Not submitting {video.path}: it needs {exc.asked} frames and {exc.used} of the budget of {exc.budget} "
                "frames (VIDEO_ASSETS_HOSTED_BUDGET_FRAMES) are already submitted or waiting in a batch. Raise the "
                "budget, or lower VIDEO_ASSETS_HOSTED_FPS, to process it.",
                permanent=True,
            ) from None
        group = self.ledger.group(member.group_id or "")
        if member.state == "waiting" and group.state == "open":
            wait_s = max(group.closes_at - self.clock(), 0.0)
            log.info(
                f"{video.path}: in staging batch {group.group_id} (job {group.job_id}), which closes in {wait_s:.0f} s "
                f"or at {group.capacity} videos; spend estimate {frames} frames at {self.sampled_fps(video):g} fps, "
                f"about {self.credits(frames):.4f} credits on {self.options.job.machine_type} (the workflow decides the real price)"
            )
        return member

    def wait(self, video: VideoProbe, log: logging.Logger) -> Group:
        """Until the video's job is done: driving its group when due, polling the job when it is this run's turn."""
        self.join(video, log)
        deadline = time.monotonic() + self.options.window_s + self.options.timeout_s
        rechecked, reported = False, None
        while True:
            member = self.member(video)
            assert member is not None and member.group_id is not None
            if member.state in REJOINABLE:
                raise BackendError(
                    f"{video.path} was not submitted with batch {member.group_id}: {member.message}. "
                    "Nothing was billed for it; fix the cause and re-run (it joins a new batch).",
                    permanent=member.state == "refused",
                )
            group = self.ledger.group(member.group_id)
            if group.state == "done":
                return group
            if group.state in DRIVEN:
                leading = self.ledger.lead(group.group_id, self.owner, self.clock(), self.options.lease_s)
                if leading is not None:
                    self._drive(leading, log)
                    continue
            elif group.state == "submitted":
                self._poll(group, log, self.options.poll_s)
            elif group.state == "failed" and not rechecked:
                rechecked = True  # a person may have restarted the job in Roboflow: look once more
                self._poll(group, log, interval_s=0.0)
                continue
            elif group.state == "failed":
                raise BackendError(
                    f"Batch job {group.job_id} (staging batch {group.group_id}) for {video.path} failed: {group.message}. "
                    f"It is not resubmitted automatically; restart it in Roboflow (inference rf-cloud batch-processing "
                    f"restart-job --job-id {group.job_id}) and re-run, or re-run with {FORCE_HINT} to pay for a new job.",
                    permanent=True,
                )
            if (group.state, group.stage) != reported:
                reported = (group.state, group.stage)
                log.info(
                    f"{video.path}: job {group.job_id} is {group.state}"
                    + (f", stage {group.stage}" if group.stage else "")
                )
            if time.monotonic() > deadline:
                raise BackendError(
                    f"Batch job {group.job_id} for {video.path} is still {group.state} after "
                    f"{self.options.window_s + self.options.timeout_s:g} s (window + VIDEO_ASSETS_HOSTED_TIMEOUT). "
                    "It stays recorded: re-run to resume waiting for the same job; nothing is submitted again."
                )
            self.sleep(min(self.options.poll_s, LONGEST_PAUSE_S))

    def results(self, video: VideoProbe, log: logging.Logger) -> list[FramePrediction]:
        """The video's frames from its job's output batch; a video the output lacks fails for good."""
        group = self.wait(video, log)
        member = self.member(video)
        assert member is not None and group.results_batch is not None
        http = self._http(log)
        try:
            folder = self.exports.fetch(self._api(http), group.job_id, group.results_batch, log)
            rows, files = video_rows(folder, marker_of(video))
            read = frames_from_rows(
                rows, video.media.fps, self.sampled_fps(video), video.media.frame_count, self.options.detections_output
            )
        except (RoboflowRequestError, ContractError) as exc:
            raise BackendError(
                f"The results of batch job {group.job_id} for {video.path} could not be read: {http.redact(exc)}. "
                "The job stays recorded: re-run to fetch them again (no new job). Roboflow keeps them for 7 days."
            ) from None
        if not files:
            message = f"no results file for {member.file_name} in output batch {group.results_batch}"
            self.ledger.record_outcome(group.group_id, video.sha256, "missing", message)
            raise BackendError(
                f"Batch job {group.job_id} finished, but its output has {message} ({video.path}; the job said: "
                f"{group.message or 'nothing'}). The video was part of the job and is not resubmitted automatically; "
                f"check the job's logs (inference rf-cloud batch-processing fetch-logs --job-id {group.job_id}) and "
                f"re-run with {FORCE_HINT} to process it again.",
                permanent=True,
            )
        if not read.exact:
            log.warning(
                f"{video.path}: the results do not say which frame each row is, and {video.media.fps:g} fps sampled at "
                f"{self.sampled_fps(video):g} fps is not a whole stride: frame positions are estimates"
            )
        self.ledger.record_outcome(group.group_id, video.sha256, "exported")
        log.info(f"{video.path}: {len(read.frames)} frames from {files} results file(s) of job {group.job_id}")
        return read.frames

    def predict(self, video: VideoProbe, sink: PredictionSink, log: logging.Logger) -> None:
        for frame in self.results(video, log):
            sink.add_frame(frame)

    # Driving a group (the lease holder) -------------------------------------------------------

    def _drive(self, group: Group, log: logging.Logger) -> None:
        http = self._http(log)
        api = self._api(http)
        try:
            if group.state == "submitting":
                self._resolve(api, group, log)
                return
            for member in self.ledger.members(group.group_id):
                if member.state == "waiting":
                    self._stage(api, group, member, log)
                    if not self.ledger.renew(group.group_id, self.owner, self.clock(), self.options.lease_s):
                        raise LeaseLost(group.group_id)
            self._check_listed(api, group, log)
            submitting = self.ledger.begin_submission(group.group_id, self.owner)
            if submitting is None:
                log.warning(f"staging batch {group.group_id}: every video left it; no job is started")
                return
            self._create(api, submitting, log)
        except LeaseLost:
            log.warning(
                f"staging batch {group.group_id}: another run drives it now (this one was silent for longer than the lease)"
            )
        except (RoboflowRequestError, ContractError) as exc:
            self.ledger.renew(
                group.group_id, self.owner, self.clock(), -self.options.lease_s
            )  # let another member go on
            raise BackendError(
                f"Preparing batch job {group.job_id} (staging batch {group.group_id}) failed: {http.redact(exc)}. "
                "What was uploaded stays recorded; re-run to go on (a job is never started twice)."
            ) from None

    def _stage(self, api: BatchApi, group: Group, member: Member, log: logging.Logger) -> None:
        """Upload one member; a file Roboflow refuses leaves the batch (the others go on without it)."""
        path = Path(member.path)
        if not path.is_file():
            self.ledger.drop(group.group_id, member.sha256, f"{path} is not there any more (moved or deleted)")
            return
        started = time.monotonic()
        try:
            upload = api.upload_url(group.group_id, member.file_name)
            try:
                api.put(f"upload {path}", upload, path)
            except RoboflowRequestError as exc:
                if exc.status not in _EXPIRED_UPLOAD_URL:
                    raise
                log.warning(f"the upload URL for {path} was refused ({exc}); asking for a fresh one")
                upload = api.upload_url(group.group_id, member.file_name)
                api.put(f"upload {path}", upload, path)
        except RoboflowRequestError as exc:
            if exc.status not in _REFUSED_FILE:
                raise
            log.warning(f"{path} leaves staging batch {group.group_id}: Roboflow refused it ({exc})")
            self.ledger.drop(group.group_id, member.sha256, f"Roboflow refused the file: {api.http.redact(exc)}")
            return
        self.ledger.mark_staged(group.group_id, member.sha256)
        log.info(
            f"{path}: uploaded to staging batch {group.group_id} as {member.file_name} in {time.monotonic() - started:.1f} s ({without_query(upload.url)})"
        )

    def _check_listed(self, api: BatchApi, group: Group, log: logging.Logger) -> None:
        """The batch must list every staged video before a job is started on it; one missing is uploaded again."""
        listed = {f.file_name for f in api.files(group.group_id)}
        unlisted = [m for m in self.ledger.members(group.group_id) if m.state == "staged" and m.file_name not in listed]
        for member in unlisted:
            log.warning(f"staging batch {group.group_id} does not list {member.file_name}; uploading it again")
            self._stage(api, group, member, log)
        if unlisted:
            listed = {f.file_name for f in api.files(group.group_id)}
            still = sorted(m.file_name for m in unlisted if m.file_name not in listed)
            if still:
                raise ContractError(f"staging batch {group.group_id} does not list {', '.join(still)} after upload")

    def _create(self, api: BatchApi, group: Group, log: logging.Logger, resolving: bool = False) -> None:
        members = [m for m in self.ledger.members(group.group_id) if m.state == "staged"]
        frames = group.frames_estimate or 0
        log.info(
            f"starting batch job {group.job_id} on staging batch {group.group_id}: {len(members)} video(s), spend estimate "
            f"{frames} frames, about {self.credits(frames):.4f} credits on {self.options.job.machine_type}"
        )
        definition = job_definition(group.group_id, JobSettings.from_json(group.settings))
        try:
            api.create_job(group.job_id, definition, name=f"video-assets {group.group_id}")
        except RoboflowRequestError as exc:
            if exc.ambiguous or exc.status is None or exc.status >= 500 or exc.status in _NOT_REFUSALS:
                if resolving:
                    raise
                log.warning(f"creating job {group.job_id} may or may not have worked ({exc}); asking the service")
                self._resolve(api, group, log)
                return
            message = api.http.redact(exc)
            self.ledger.record_refused(group.group_id, message)
            raise BackendError(
                f"Roboflow refused batch job {group.job_id} for staging batch {group.group_id}: {message}. No job was "
                "created and nothing is billed; fix the cause (API key, plan with Batch Processing, workspace, "
                "workflow, settings) and re-run: the videos join a new batch.",
                permanent=True,
            ) from None
        self.ledger.record_submitted(group.group_id)
        log.info(f"started batch job {group.job_id}")

    def _resolve(self, api: BatchApi, group: Group, log: logging.Logger) -> None:
        """A job may have been created (a lost answer, a driver that died): its id is fixed, so ask for it."""
        if api.job(group.job_id) is not None:
            self.ledger.record_submitted(group.group_id)
            log.info(f"batch job {group.job_id} exists; it is not started again")
            return
        log.warning(f"batch job {group.job_id} does not exist; creating it with the same id and definition")
        self._create(api, group, log, resolving=True)

    # Polling ----------------------------------------------------------------------------------

    def _poll(self, group: Group, log: logging.Logger, interval_s: float) -> None:
        """Poll the job and its stages, unless another member run did within the interval."""
        if not self.ledger.claim_poll(group.group_id, self.clock(), interval_s):
            return
        http = self._http(log)
        api = self._api(http)
        try:
            status = api.job(group.job_id)
            stages = api.stages(group.job_id) if status is not None else []
        except (RoboflowRequestError, ContractError) as exc:
            raise BackendError(
                f"Checking batch job {group.job_id} failed: {http.redact(exc)}. The job stays recorded; re-run to "
                "check it again (nothing is submitted again)."
            ) from None
        if status is None:
            message = f"the service does not know job {group.job_id} (Roboflow keeps a job's data for 7 days)"
            self.ledger.record_status(group.group_id, "failed", None, message, None)
            return
        if status.state == "running":
            current = next((s for s in reversed(stages) if s.name == status.stage), stages[-1] if stages else None)
            stage = f"{current.name} ({current.status_type})" if current else status.stage
            self.ledger.record_status(group.group_id, "running", stage, status.message, None)
            return
        if status.state == "failed":
            failures = [f"stage {s.name}: {s.message}" for s in stages if s.failed and s.message]
            self.ledger.record_status(
                group.group_id, "failed", status.stage, "; ".join([status.message, *failures]), None
            )
            return
        output = results_batch(stages, status)
        if output is None:
            self.ledger.record_status(
                group.group_id, "failed", status.stage, "the job finished without an output batch", None
            )
            return
        self.ledger.record_status(group.group_id, "succeeded", status.stage, status.message, output)
        log.info(f"batch job {group.job_id} finished; results in batch {output}")

    # Helpers ----------------------------------------------------------------------------------

    def _forced(self, known: Member) -> bool:
        """force_resubmit applies once per run, and only to a video already submitted."""
        if not self.options.force_resubmit or known.forced_by == self.owner or known.group_id is None:
            return False
        return known.state not in REJOINABLE and self.ledger.group(known.group_id).state in PAST_SUBMISSION

    def _http(self, log: logging.Logger) -> RoboflowHttp:
        return RoboflowHttp(self.api_key, self.options.retry, log, sleep=self.sleep)

    def _api(self, http: RoboflowHttp) -> BatchApi:
        return BatchApi(http, self.options.api_url, self.options.job.workspace)


def marker_of(video: VideoProbe) -> str:
    """Marks the video's files in a job's output: its name in the staging batch begins with it."""
    return f"va{video.sha256[:20]}"


def staged_name(video: VideoProbe) -> str:
    return f"{marker_of(video)}-{readable_name(Path(video.relative_path).stem)}{Path(video.path).suffix.lower()}"


def build_batch(config: BatchConfig, context: BuildContext) -> BatchBackend:
    if not (config.workspace and config.workflow_id):
        raise BackendError(
            "The batch backend needs a saved workflow: set ROBOFLOW_WORKSPACE and ROBOFLOW_WORKFLOW (Batch Processing "
            "runs saved workflows only, not an inline spec or a model)."
        )
    machine = config.batch_machine_type.strip().lower()
    if machine not in MACHINE_TYPES:
        raise BackendError(
            f"VIDEO_ASSETS_BATCH_MACHINE_TYPE={config.batch_machine_type!r} must be one of {', '.join(MACHINE_TYPES)}"
        )
    options = BatchOptions(
        api_url=config.api_url,
        job=JobSettings(
            workspace=config.workspace,
            workflow_id=config.workflow_id,
            max_video_fps=config.hosted_fps,
            machine_type=machine,
            workers_per_machine=config.batch_workers_per_machine,
            max_runtime_s=config.batch_max_runtime_seconds,
        ),
        window_s=config.batch_window_seconds,
        capacity=config.batch_max_videos,
        poll_s=config.poll_seconds,
        timeout_s=config.hosted_timeout_seconds,
        state_dir=context.state_dir,
        open_ledger=context.open_ledger,
        budget_frames=config.budget_frames,
        force_resubmit=config.force_resubmit,
        lease_s=config.batch_lease_seconds,
        retry=config.retry_policy(),
    )
    return BatchBackend(context.api_key, options, owner=context.run_id)


def _batch_steps() -> list:
    from video_assets.backends.batch.assets import batch_job

    return [batch_job]


KIND = BackendKind(
    name="batch",
    description="Roboflow Batch Processing: videos ready together share one staging batch and job; sampled frames",
    config=BatchConfig,
    build=build_batch,
    steps=_batch_steps,
)
