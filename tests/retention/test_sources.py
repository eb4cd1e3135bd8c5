"""Source videos after processing: kept (default), moved to processed/ (and still found by a re-run), or deleted."""

import dataclasses
from datetime import UTC, datetime

import dagster as dg

from video_assets.definitions import build_definitions
from video_assets.failures import is_permanent
from video_assets.ingest.sensor import SENSOR_NAME
from video_assets.retention.sweep import carry_out, plan_retention
from video_assets.settings import Keep, RetentionSettings

AT_ONCE = Keep(days=0)


def sources_only(settings, action: str, keep: Keep = AT_ONCE):
    forever = Keep()
    retention = RetentionSettings(segments=forever, logs=forever, runs=forever, compute_logs=forever, sources=keep, source_action=action)
    return dataclasses.replace(settings, retention=retention)


def sensor_ticks(defs: dg.Definitions, instance: dg.DagsterInstance, ticks: int = 2) -> list[dg.SensorResult]:
    results, cursor = [], None
    for _ in range(ticks):
        with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources) as context:
            result = defs.get_sensor_def(SENSOR_NAME)(context)
        cursor = result.cursor or cursor
        results.append(result)
    return results


def test_moved_to_processed_the_sensor_ignores_it_and_a_rerun_still_finds_it(
    settings, instance, drop_sample, register, materialize
) -> None:
    drop_sample("empty_hallway.mp4", as_name="cam 1/empty_hallway.mp4")
    waiting = drop_sample("one_runner.mp4")  # registered, not processed yet: untouched
    keys = register()
    settings = sources_only(settings, "move")
    defs = build_definitions(settings)
    assert materialize(defs, keys["cam 1/empty_hallway.mp4"]).success

    done = carry_out(plan_retention(settings, instance, datetime.now(UTC)), settings, print)
    assert [(a.kind, a.verb, a.what) for a in done.actions] == [("sources", "move", "inbox/cam 1/empty_hallway.mp4")]
    moved = settings.inbox / "processed" / "cam 1" / "empty_hallway.mp4"
    assert moved.is_file() and not (settings.inbox / "cam 1" / "empty_hallway.mp4").exists() and waiting.is_file()

    requested = [r.partition_key for result in sensor_ticks(defs, instance) for r in result.run_requests]
    assert requested == [keys["one_runner.mp4"]]  # the one waiting in the inbox; nothing from processed/
    rerun = materialize(defs, keys["cam 1/empty_hallway.mp4"])  # e.g. the backfill after a workflow change
    assert rerun.success
    probe = rerun.output_for_node("raw_video")
    assert (probe.path, probe.relative_path) == (str(moved), "cam 1/empty_hallway.mp4")


def test_deleted_after_processing_a_rerun_fails_for_good_saying_why(
    settings, instance, drop_sample, register, materialize, failure_message
) -> None:
    path = drop_sample("empty_hallway.mp4")
    key = register()["empty_hallway.mp4"]
    settings = sources_only(settings, "delete")
    defs = build_definitions(settings)
    assert materialize(defs, key).success
    dry = plan_retention(settings, instance, datetime.now(UTC))
    assert [a.what for a in dry.actions] == ["inbox/empty_hallway.mp4"] and path.exists()
    carry_out(dry, settings, print)
    assert not path.exists()
    rerun = materialize(defs, key)
    assert not rerun.success
    assert "VIDEO_ASSETS_PROCESSED_SOURCES=delete" in failure_message(rerun)
    [failure] = [e for e in rerun.all_events if e.is_step_failure]
    assert is_permanent(failure.step_failure_data.user_failure_data.metadata)


def test_by_default_sources_stay_and_a_young_one_stays_under_a_day_setting(
    settings, instance, drop_sample, register, materialize
) -> None:
    path = drop_sample("empty_hallway.mp4")
    key = register()["empty_hallway.mp4"]
    assert materialize(build_definitions(settings), key).success
    assert plan_retention(settings, instance, datetime.now(UTC)).actions == []  # the default: keep
    one_day = sources_only(settings, "delete", Keep(days=1))
    assert plan_retention(one_day, instance, datetime.now(UTC)).actions == [] and path.exists()
