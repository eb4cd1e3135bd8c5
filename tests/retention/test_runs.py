"""Old runs go with their event logs, compute logs and SQLite shard, except the runs the instance still needs."""

import dataclasses
from datetime import UTC, datetime

import dagster as dg

from video_assets.retention.sweep import carry_out, plan_retention
from video_assets.settings import Keep, RetentionSettings

VIDEO = "clip.mp4-0123456789ab"  # a video partition key: the backfill reads its newest runs
PARTS = dg.StaticPartitionsDefinition([VIDEO, "lobby"])


@dg.asset(partitions_def=PARTS)
def counted(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    print(f"captured stdout of {context.partition_key}")  # lands in the compute logs
    return dg.MaterializeResult()


@dg.asset(partitions_def=PARTS)
def broken() -> None:
    raise dg.Failure("always fails")


@dg.asset
def summary() -> dg.MaterializeResult:
    return dg.MaterializeResult()


def runs_only(settings, runs: Keep, compute_logs: Keep):
    forever = Keep()
    retention = RetentionSettings(segments=forever, logs=forever, runs=runs, compute_logs=compute_logs, sources=forever)
    return dataclasses.replace(settings, retention=retention)


def run(instance, asset, partition=None) -> str:
    return dg.materialize([asset], partition_key=partition, instance=instance, raise_on_error=False).run_id


def latest(instance, key: str, partition: str | None) -> str:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None), limit=1
    ).records
    return records[0].run_id


def test_superseded_runs_go_whole_and_what_the_instance_needs_stays(settings, instance) -> None:
    lobby = [run(instance, counted, "lobby") for _ in range(4)]
    video = [run(instance, counted, VIDEO) for _ in range(4)] + [run(instance, broken, VIDEO)]
    summaries = [run(instance, summary) for _ in range(2)]
    shards = settings.dagster_home / "history" / "runs"
    logs = settings.dagster_home / "storage"
    assert all((shards / f"{r}.db").exists() and (logs / r / "compute_logs").is_dir() for r in lobby + video[:4])
    latest_before = {(k, p): latest(instance, k, p) for k, p in [("counted", "lobby"), ("counted", VIDEO), ("summary", None)]}
    settings = runs_only(settings, runs=Keep(days=0), compute_logs=Keep())
    now = datetime.now(UTC)

    expected = {*lobby[:3], *video[:2], summaries[0]}  # superseded; the video's newest three runs stay
    dry = plan_retention(settings, instance, now)
    assert {a.what for a in dry.actions} == expected and all(a.bytes > 100_000 for a in dry.actions)
    assert dry.runs is not None and dry.runs.kept == 5
    assert all(instance.get_run_by_id(r) for r in expected)  # the plan touched nothing

    done = carry_out(plan_retention(settings, instance, now), settings, print)
    assert not done.errors and {a.what for a in done.actions} == expected
    for gone in expected:
        assert instance.get_run_by_id(gone) is None
        assert not (shards / f"{gone}.db").exists() and not (logs / gone).exists()
    for kept in {*lobby, *video, *summaries} - expected:
        assert instance.get_run_by_id(kept) is not None and (shards / f"{kept}.db").exists()
    assert {(k, p): latest(instance, k, p) for k, p in latest_before} == latest_before
    assert plan_retention(settings, instance, now).actions == []  # examined once: the next pass starts after them

    # Compute logs of the runs kept go on their own schedule; the runs stay.
    settings = runs_only(settings, runs=Keep(), compute_logs=Keep(days=0))
    logs_done = carry_out(plan_retention(settings, instance, now), settings, print)
    kept = {*lobby, *video, *summaries} - expected
    assert {(a.kind, a.what) for a in logs_done.actions} == {("compute_logs", r) for r in kept}
    assert all(not (logs / r / "compute_logs").exists() and instance.get_run_by_id(r) for r in kept)
