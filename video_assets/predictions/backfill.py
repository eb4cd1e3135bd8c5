"""The nightly backfill: re-run video partitions that are missing, failed, or made by an older workflow.

A partition is *stale* when its latest frame_predictions was made by another workflow version than
the one configured now for its source (the version is on every row and in the materialization
metadata; a drop folder may have its own workflow), so a workflow change, or new weights in a model
package it loads, re-runs exactly the videos it affects, like Pixeltable's recompute of a changed
column. Failures marked permanent (an unreadable file), partitions that failed too often and
partitions whose last run a person canceled are not retried; the schedule lists them in its tick log
instead.
"""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import dagster as dg

from video_assets.backends.resource import BackendSwitch
from video_assets.ingest.assets import PROCESS_VIDEO, VIDEO_PARTITIONS
from video_assets.ingest.sensor import SOURCE_TAG, queue_tag
from video_assets.predictions.assets import FRAME_PREDICTIONS
from video_assets.runs import UNFINISHED, Materialized, failure_of, latest_materializations, runs_by_partition

SCHEDULE_NAME = "video_backfill"
REASON_TAG = "video_assets/backfill"
MAX_ATTEMPTS = 3  # failed runs since the last success before a partition is given up on
RETRY_ORDER = ("failed", "missing", "stale")


@dataclass(frozen=True)
class PartitionState:
    key: str
    status: str  # done | missing | failed | stale | in_progress | given_up
    detail: str = ""


def build_backfill_schedule(
    cron: str, batch_size: int, source_queues: Mapping[str, str] | None = None
) -> dg.ScheduleDefinition:
    """`source_queues`: a video goes to the run-worker queue of the drop folder it came from, as from the sensor."""
    queues = source_queues or {}

    @dg.schedule(
        name=SCHEDULE_NAME,
        cron_schedule=cron,
        execution_timezone="UTC",
        job_name=PROCESS_VIDEO,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Re-runs up to {batch_size} missing, failed or stale videos per tick "
        "(run concurrency is capped by the instance's run queue).",
    )
    def video_backfill(context: dg.ScheduleEvaluationContext, backend: BackendSwitch):
        versions = backend.workflow_versions()
        states = classify_partitions(context.instance, versions.pop(""), versions)
        chosen = plan_backfill(states, batch_size)
        context.log.info(_report(states, chosen))
        if not chosen:
            return dg.SkipReason(_report(states, chosen))
        sources = sources_of(context.instance, [state.key for state in chosen])
        stamp = (context.scheduled_execution_time or datetime.now()).strftime("%Y-%m-%dT%H:%M")
        return [
            dg.RunRequest(
                partition_key=state.key,
                run_key=f"{stamp}:{state.key}",
                tags={REASON_TAG: state.status, **queue_tag(queues.get(sources.get(state.key, "")))},
            )
            for state in chosen
        ]

    return video_backfill


def plan_backfill(states: list[PartitionState], batch_size: int) -> list[PartitionState]:
    """Failed first (they were wanted), then missing, then stale; at most batch_size."""
    wanted = [s for s in states if s.status in RETRY_ORDER]
    return sorted(wanted, key=lambda s: (RETRY_ORDER.index(s.status), s.key))[:batch_size]


def sources_of(instance: dg.DagsterInstance, keys: list[str]) -> dict[str, str]:
    """The drop folder each video came from, as its sensor-launched run recorded it."""
    sources = {}
    for key, records in runs_by_partition(instance, keys).items():
        source = next((r.dagster_run.tags[SOURCE_TAG] for r in records if SOURCE_TAG in r.dagster_run.tags), None)
        if source:
            sources[key] = source
    return sources


def classify_partitions(
    instance: dg.DagsterInstance, workflow_version: str, source_versions: Mapping[str, str] | None = None
) -> list[PartitionState]:
    """Each video's state; `source_versions` has the workflow version of the drop folders with their own."""
    keys = instance.get_dynamic_partitions(VIDEO_PARTITIONS)
    done = latest_materializations(instance, FRAME_PREDICTIONS)
    runs = runs_by_partition(instance, keys)
    states = []
    for key in keys:
        latest = done.get(key)
        since = [r for r in runs.get(key, []) if latest is None or r.create_timestamp.timestamp() > latest.timestamp]
        wanted = (source_versions or {}).get(latest.source, workflow_version) if latest else workflow_version
        states.append(_state(instance, key, latest, since, wanted))
    return states


def _state(
    instance: dg.DagsterInstance,
    key: str,
    latest: Materialized | None,
    runs_since: list[dg.RunRecord],
    workflow_version: str,
) -> PartitionState:
    if any(r.dagster_run.status in UNFINISHED for r in runs_since):
        return PartitionState(key, "in_progress")
    if runs_since and runs_since[0].dagster_run.status == dg.DagsterRunStatus.CANCELED:
        return PartitionState(key, "given_up", "its last run was canceled by a person; run it again by hand")
    failures = [r for r in runs_since if r.dagster_run.status == dg.DagsterRunStatus.FAILURE]
    if failures:
        message, permanent = failure_of(instance, failures[0].dagster_run.run_id)
        if permanent:
            return PartitionState(key, "given_up", message)
        if len(failures) >= MAX_ATTEMPTS:
            return PartitionState(key, "given_up", f"failed {len(failures)} times; last: {message}")
        return PartitionState(key, "failed", message)
    if latest is None:
        return PartitionState(key, "missing")
    if latest.workflow_version != workflow_version:
        return PartitionState(key, "stale", f"made by {latest.workflow_version}, now {workflow_version}")
    return PartitionState(key, "done")


def _report(states: list[PartitionState], chosen: list[PartitionState]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for state in states:
        counts[state.status] += 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no videos"
    lines = [f"{len(states)} video(s): {summary}; requesting {len(chosen)} run(s)."]
    lines += [f"  not retried: {s.key}: {s.detail}" for s in states if s.status == "given_up"]
    return "\n".join(lines)
