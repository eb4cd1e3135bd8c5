"""What the Dagster instance recorded about the runs of video partitions (public DagsterInstance calls only).

Used by the nightly backfill (which videos failed, and whether the failure was permanent), by
`video-assets process` (how each file's run ended) and by retention (which videos are processed),
so all read runs the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg

from video_assets.failures import is_permanent

PARTITION_TAG = "dagster/partition"
RUN_KEY_TAG = "dagster/run_key"
MAX_RUNTIME_TAG = "dagster/max_runtime"  # run monitoring fails a run that runs longer (seconds)

# A run in one of these states may still change the partition: wait for it, never start another.
UNFINISHED = frozenset(
    {
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
    }
)


def runs_by_partition(instance: dg.DagsterInstance, keys: Iterable[str]) -> dict[str, list[dg.RunRecord]]:
    """Runs of these partitions, newest first (runs without a partition tag are left out)."""
    wanted = sorted(set(keys))
    by_key: dict[str, list[dg.RunRecord]] = defaultdict(list)
    if wanted:
        for record in instance.get_run_records(dg.RunsFilter(tags={PARTITION_TAG: wanted})):
            by_key[record.dagster_run.tags[PARTITION_TAG]].append(record)
    return by_key


@dataclass(frozen=True)
class Materialized:
    """A partition's newest materialization of an asset."""

    timestamp: float
    workflow_version: str
    source: str  # its video's drop folder ("" when made before the source was recorded)


def latest_materializations(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> dict[str, Materialized]:
    """partition -> its newest materialization, read in pages."""
    latest: dict[str, Materialized] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset_key), limit=1000, cursor=cursor)
        for record in page.records:
            materialization = record.asset_materialization
            if materialization is not None and materialization.partition and materialization.partition not in latest:
                metadata = materialization.metadata
                latest[materialization.partition] = Materialized(
                    record.timestamp,
                    str(getattr(metadata.get("workflow_version"), "value", "")),
                    str(getattr(metadata.get("source"), "value", "")),
                )
        if not page.has_more:
            return latest
        cursor = page.cursor


def latest_run(instance: dg.DagsterInstance, key: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={PARTITION_TAG: key}), limit=1)
    return runs[0] if runs else None


def failure_of(instance: dg.DagsterInstance, run_id: str) -> tuple[str, bool]:
    """Why a run failed (its first step failure's message), and whether that failure was permanent."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.step_failure_data if event else None
        if data is None:
            continue
        user = data.user_failure_data
        if user is not None:
            return user.description or "", is_permanent(user.metadata)
        if data.error:
            return data.error.message.strip().splitlines()[-1], False
    for record in reversed(instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records):
        event = record.event_log_entry.dagster_event
        engine = event.engine_event_data if event else None
        if engine is not None and engine.error is not None:  # e.g. the run could not be handed to a worker
            return engine.error.message.strip().splitlines()[0], False
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records:
        message = (record.event_log_entry.message or "").strip()
        if message:  # e.g. run monitoring: "Detected run worker status FAILED: ..." (details on later lines)
            return message.splitlines()[0], False
    return "the run did not succeed (see the run in the UI)", False


def limit_runtime(context: dg.AssetExecutionContext, seconds: float) -> None:
    """Let run monitoring fail this run (its worker presumed dead) once it has run `seconds`.

    Called by the steps that know what the video costs; a limit the run was launched with is kept.
    """
    if MAX_RUNTIME_TAG not in context.run.tags:
        context.instance.add_run_tags(context.run_id, {MAX_RUNTIME_TAG: str(round(seconds))})
