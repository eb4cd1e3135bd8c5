"""What deserves a person's attention, as notifications: read from runs, camera status files and the disk.

- `video_failed`: a video's run failed and the failure is permanent (nothing will retry it);
- `hosted_job`: a hosted inference job finished, or the step that submits and waits for it failed (the job
  failed, or the run gave up waiting: the message says which);
- `data_test`: an asset check (a SQL model's data test, the Vision Events delivery check) did not pass;
- `camera`: a camera delivered no frame for more than VIDEO_ASSETS_CAMERA_DOWN_AFTER seconds, and when
  it is back;
- `disk_guard`: free space fell below VIDEO_ASSETS_MIN_FREE (camera workers pause, no runs start), and
  when it is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import dagster as dg

from video_assets.backends.hosted.assets import inference_job
from video_assets.disk_guard import DiskSpace
from video_assets.ingest.keys import hash_of_key
from video_assets.ingest.sensor import FILE_TAG
from video_assets.notify.webhook import Notification
from video_assets.runs import PARTITION_TAG, failure_of
from video_assets.streams.status import WorkerStatus

HOSTED_JOB_STEP = inference_job.key.to_user_string()


def run_failed(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Iterator[Notification]:
    partition = run.tags.get(PARTITION_TAG, "")
    message, permanent = failure_of(instance, run.run_id)
    details = {
        "run_id": run.run_id,
        "job": run.job_name,
        "partition": partition,
        "file": run.tags.get(FILE_TAG, ""),
        "error": message,
    }
    if hash_of_key(partition) and permanent:
        yield Notification(
            f"video_failed:{run.run_id}", "video_failed", f"Video {partition} failed: {message}", details
        )
    if HOSTED_JOB_STEP in _failed_steps(instance, run.run_id):
        yield Notification(
            f"hosted_job:{run.run_id}",
            "hosted_job",
            f"Hosted inference for {partition} failed: {message}",
            {**details, "status": "failed"},
        )
    yield from failed_checks(instance, run)


def run_succeeded(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Iterator[Notification]:
    for record in instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is None or materialization.asset_key != inference_job.key:
            continue
        job_id = _value(materialization.metadata.get("job_id"))
        if job_id:  # empty when the run's backend was not `hosted`
            details = {
                "run_id": run.run_id,
                "partition": materialization.partition,
                "job_id": job_id,
                "status": "finished",
                "spend_estimate_credits": _value(materialization.metadata.get("spend_estimate_credits")),
            }
            yield Notification(
                f"hosted_job:{run.run_id}",
                "hosted_job",
                f"Hosted job {job_id} for {materialization.partition} finished",
                details,
            )
    yield from failed_checks(instance, run)


def failed_checks(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Iterator[Notification]:
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    for record in records:
        event = record.event_log_entry.dagster_event
        evaluation = event.asset_check_evaluation_data if event else None
        if evaluation is None or evaluation.passed:
            continue
        asset = evaluation.asset_key.to_user_string()
        details = {
            "run_id": run.run_id,
            "asset": asset,
            "check": evaluation.check_name,
            "severity": evaluation.severity.value,
            "description": evaluation.description or "",
            **{k: _value(v) for k, v in evaluation.metadata.items() if k != "sample"},
        }
        yield Notification(
            f"data_test:{run.run_id}:{asset}:{evaluation.check_name}", "data_test",
            f"Data test {evaluation.check_name} of {asset} failed", details,
        )  # fmt: skip


@dataclass(frozen=True)
class CameraState:
    down: bool
    since: float  # epoch seconds: when it went down or came back (as this sensor saw it)


def camera_change(
    name: str, status: WorkerStatus | None, previous: CameraState | None, down_after_s: float, now: datetime
) -> tuple[CameraState | None, Notification | None]:
    """Whether a camera went down (no frame for `down_after_s`) or came back, and the notification that says so.

    A camera whose worker never wrote a status is not watched (it is not being recorded on purpose).
    """
    if status is None:
        return previous, None
    last = status.last_frame_ts or status.started_at
    silent_s = (now - datetime.fromisoformat(last)).total_seconds()
    down = silent_s > down_after_s
    was_down = previous.down if previous else False
    if down == was_down:
        return previous or CameraState(down, now.timestamp()), None
    state = CameraState(down, now.timestamp())
    details = {
        "camera": name,
        "url": status.url,
        "worker_state": status.state,
        "detail": status.detail,
        "last_frame_ts": status.last_frame_ts or "",
        "seconds_without_frames": round(silent_s, 1),
        "last_error": status.last_error or "",
    }
    stamp = f"{now:%Y%m%dT%H%M%S}"
    if down:
        title = f"Camera {name} is down: no frame for {silent_s:.0f} s ({status.state}{': ' + status.detail if status.detail else ''})"
        return state, Notification(f"camera:{name}:down:{stamp}", "camera", title, {**details, "status": "down"})
    down_for = now.timestamp() - previous.since if previous else 0.0
    title = f"Camera {name} is back after {down_for:.0f} s"
    return state, Notification(
        f"camera:{name}:up:{stamp}", "camera", title, {**details, "status": "up", "down_for_s": round(down_for, 1)}
    )


def disk_change(space: DiskSpace, was_low: bool, now: datetime) -> Notification | None:
    if space.low == was_low:
        return None
    details = {
        "path": str(space.path),
        "free_bytes": space.free_bytes,
        "total_bytes": space.total_bytes,
        "threshold_bytes": space.threshold_bytes,
        "min_free": space.setting,
        "status": "tripped" if space.low else "cleared",
    }
    stamp = f"{now:%Y%m%dT%H%M%S}"
    if space.low:
        return Notification(f"disk_guard:tripped:{stamp}", "disk_guard", f"Disk guard tripped: {space.reason}", details)
    return Notification(
        f"disk_guard:cleared:{stamp}",
        "disk_guard",
        f"Disk guard cleared: free space on the filesystem of {space.path} is above VIDEO_ASSETS_MIN_FREE={space.setting} again",
        details,
    )


def _failed_steps(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    return {r.event_log_entry.step_key for r in records if r.event_log_entry.step_key}


def _value(value: object) -> object:
    return getattr(value, "value", value)
