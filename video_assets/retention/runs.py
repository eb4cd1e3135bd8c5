"""Dagster's own history: old runs (with their event logs and compute logs), and compute logs of the runs kept.

Runs are removed with public DagsterInstance calls (`delete_run`, and the instance's compute log
manager's `delete_logs`). Removing a run also removes the materializations it recorded, so a finished
run older than VIDEO_ASSETS_KEEP_RUNS is removed only if it holds no partition's (or unpartitioned
asset's) latest materialization, and, for video partitions, is not one of the newest runs the nightly
backfill reads to decide whether a video is given up on. The default SQLite storage keeps each run's
events in a file of its own (`history/runs/<run id>.db`, about 128 KB even when empty), which
`delete_run` empties but leaves; it is removed with the run.

Runs are examined once, oldest first, in batches; `state/retention.json` remembers how far.
Sensor and schedule ticks are purged by the daemon itself (`retention:` in dagster.yaml).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from video_assets.ingest.keys import hash_of_key
from video_assets.predictions.backfill import MAX_ATTEMPTS
from video_assets.retention.policy import Action, tree_bytes
from video_assets.runs import PARTITION_TAG

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
BATCH = 2000  # runs examined per retention run; the rest wait for the next one
SHARD_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal")


@dataclass(frozen=True)
class RunScan:
    actions: list[Action]
    examined_until: float  # creation time of the last run examined: where the next scan starts
    kept: int  # examined but kept (latest materialization, or among the newest runs of a video)
    more: bool  # the batch was full: more old runs wait


def old_runs(instance: dg.DagsterInstance, since: float, cutoff: float, limit: int = BATCH) -> list[dg.RunRecord]:
    """Finished runs created after `since` and before `cutoff` (epoch seconds), oldest first."""
    filters = dg.RunsFilter(
        statuses=FINISHED,
        created_after=datetime.fromtimestamp(since, tz=UTC),
        created_before=datetime.fromtimestamp(cutoff, tz=UTC),
    )
    return list(instance.get_run_records(filters=filters, limit=limit, ascending=True))


def run_actions(instance: dg.DagsterInstance, dagster_home: Path, since: float, cutoff: float) -> RunScan:
    records = old_runs(instance, since, cutoff)
    keeper = _Keeper(instance)
    actions = []
    for record in records:
        run_id = record.dagster_run.run_id
        if keeper.keeps(record.dagster_run):
            continue
        files = [*_shard_files(dagster_home, run_id), dagster_home / "storage" / run_id]
        at = record.end_time or record.create_timestamp.timestamp()
        actions.append(
            Action(
                "runs",
                "delete",
                run_id,
                sum(tree_bytes(f) for f in files if f.exists()),
                at,
                _run_remover(instance, dagster_home, run_id),
            )
        )
    last = records[-1].create_timestamp.timestamp() if records else since
    return RunScan(actions, last, len(records) - len(actions), len(records) == BATCH)


def compute_log_actions(instance: dg.DagsterInstance, since: float, cutoff: float) -> RunScan:
    """The captured stdout/stderr of finished runs created before `cutoff`, wherever the run itself is kept."""
    records = old_runs(instance, since, cutoff)
    actions = []
    for record in records:
        run_id = record.dagster_run.run_id
        folder = _compute_log_folder(instance, run_id)
        if folder is not None and folder.is_dir():
            at = record.end_time or record.create_timestamp.timestamp()
            actions.append(
                Action("compute_logs", "delete", run_id, tree_bytes(folder), at, _log_remover(instance, run_id))
            )
    last = records[-1].create_timestamp.timestamp() if records else since
    return RunScan(actions, last, 0, len(records) == BATCH)


class _Keeper:
    """Which runs the instance still needs: asks each (asset, partition) and each video partition once."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance
        self._latest: dict[tuple[dg.AssetKey, str | None], str | None] = {}
        self._newest: dict[str, set[str]] = {}

    def keeps(self, run: dg.DagsterRun) -> bool:
        partition = run.tags.get(PARTITION_TAG)
        # A video partition (its key carries a content hash): the backfill reads its newest runs.
        if partition and hash_of_key(partition) and run.run_id in self._newest_runs(partition):
            return True
        return any(self._latest_run(key, part) == run.run_id for key, part in self._materialized(run.run_id))

    def _materialized(self, run_id: str) -> Iterable[tuple[dg.AssetKey, str | None]]:
        records = self.instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        for record in records:
            materialization = record.event_log_entry.asset_materialization
            if materialization is not None:
                yield materialization.asset_key, materialization.partition

    def _latest_run(self, key: dg.AssetKey, partition: str | None) -> str | None:
        if (key, partition) not in self._latest:
            records = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
            ).records
            self._latest[(key, partition)] = records[0].run_id if records else None
        return self._latest[(key, partition)]

    def _newest_runs(self, partition: str) -> set[str]:
        if partition not in self._newest:
            runs = self.instance.get_runs(filters=dg.RunsFilter(tags={PARTITION_TAG: partition}), limit=MAX_ATTEMPTS)
            self._newest[partition] = {r.run_id for r in runs}
        return self._newest[partition]


def _shard_files(dagster_home: Path, run_id: str) -> list[Path]:
    return [dagster_home / "history" / "runs" / f"{run_id}{suffix}" for suffix in SHARD_SUFFIXES]


def _compute_log_folder(instance: dg.DagsterInstance, run_id: str) -> Path | None:
    """Where the instance's compute log manager keeps a run's logs, when they are local files."""
    location = instance.compute_log_manager.get_log_metadata([run_id, "compute_logs", "step"]).stdout_location
    return Path(location).parent if location else None


def _run_remover(instance: dg.DagsterInstance, dagster_home: Path, run_id: str):
    def remove() -> None:
        instance.compute_log_manager.delete_logs(prefix=[run_id])
        instance.delete_run(run_id)
        for shard in _shard_files(dagster_home, run_id):
            shard.unlink(missing_ok=True)

    return remove


def _log_remover(instance: dg.DagsterInstance, run_id: str):
    return lambda: instance.compute_log_manager.delete_logs(prefix=[run_id, "compute_logs"])
