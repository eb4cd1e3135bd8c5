"""The nightly backfill schedule: exactly the missing, failed and stale videos, in bounded batches."""

import dataclasses
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from video_assets.backends.self_hosted import DEFAULT_WORKFLOW_FILE, SelfHostedBackend
from video_assets.definitions import build_definitions
from video_assets.predictions.backfill import REASON_TAG, SCHEDULE_NAME, classify_partitions

NIGHT = datetime(2026, 11, 27, 2, 0, tzinfo=timezone.utc)


def evaluate_schedule(defs: dg.Definitions, instance):
    # As a context manager: the context opens its own instance from the ref and must close it here,
    # not whenever it happens to be garbage collected (which would reset Dagster's context state).
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=NIGHT, resources=defs.resources, repository_def=defs.get_repository_def()
    ) as context:
        return defs.get_schedule_def(SCHEDULE_NAME)(context)


def add_run(instance, key: str, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    """A run record in a given state (what a crashed, still-running or queued run leaves behind)."""
    return instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", run_id=str(uuid.uuid4()), status=status,
                                          tags={"dagster/partition": key}))


@pytest.fixture
def mixed(settings, instance, drop_sample, register, materialize, with_backend, tmp_path):
    """done, stale, missing, failed (transient), failed (permanent), given up, in progress."""
    for name in ("two_walkers.mp4", "one_runner.mp4", "empty_hallway.mp4"):
        drop_sample(name)
    drop_sample("two_walkers.mp4", as_name="flaky/two_walkers.mp4")
    (settings.inbox / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 30)
    (settings.inbox / "gone.mp4").write_bytes(b"gone" * 100)
    (settings.inbox / "busy.mp4").write_bytes(b"busy" * 100)
    keys = register()

    current = build_definitions(settings)
    assert materialize(current, keys["two_walkers.mp4"]).success
    older = json.loads(Path(DEFAULT_WORKFLOW_FILE).read_text())
    older["steps"][0]["threshold"] = 24
    (tmp_path / "older.json").write_text(json.dumps(older))
    assert materialize(build_definitions(with_backend(workflow_file=str(tmp_path / "older.json"))),
                       keys["one_runner.mp4"]).success
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    flaky = materialize(build_definitions(with_backend(workflow_file=str(broken))), keys["flaky/two_walkers.mp4"])
    corrupt = materialize(current, keys["corrupt.mp4"])
    for _ in range(3):
        add_run(instance, keys["gone.mp4"], dg.DagsterRunStatus.FAILURE)
    add_run(instance, keys["busy.mp4"], dg.DagsterRunStatus.STARTED)
    return keys, current, flaky, corrupt


@pytest.mark.slow  # the flaky video's step is retried twice, 5 s then 10 s later
def test_the_schedule_requests_exactly_the_missing_failed_and_stale_videos(mixed, settings, instance) -> None:
    keys, current, flaky, corrupt = mixed
    # Transient failures are retried inside the run with backoff; permanent ones are not.
    assert not flaky.success and not corrupt.success
    assert len([e for e in flaky.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]) == 2
    assert not [e for e in corrupt.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]

    version = SelfHostedBackend().identity().workflow_version  # what the default configuration runs
    states = {s.key: s for s in classify_partitions(instance, version)}
    assert {name: states[key].status for name, key in keys.items()} == {
        "two_walkers.mp4": "done",
        "one_runner.mp4": "stale",
        "empty_hallway.mp4": "missing",
        "flaky/two_walkers.mp4": "failed",
        "corrupt.mp4": "given_up",
        "gone.mp4": "given_up",
        "busy.mp4": "in_progress",
    }
    assert "broken.json cannot be read" in states[keys["flaky/two_walkers.mp4"]].detail
    assert "cannot be decoded as video" in states[keys["corrupt.mp4"]].detail
    assert states[keys["gone.mp4"]].detail.startswith("failed 3 times")
    assert states[keys["one_runner.mp4"]].detail.endswith(f"now {version}")

    requests = evaluate_schedule(current, instance)
    assert [(r.partition_key, r.tags[REASON_TAG]) for r in requests] == [
        (keys["flaky/two_walkers.mp4"], "failed"),
        (keys["empty_hallway.mp4"], "missing"),
        (keys["one_runner.mp4"], "stale"),
    ]
    assert all(r.run_key == f"2026-11-27T02:00:{r.partition_key}" for r in requests)

    small = build_definitions(dataclasses.replace(settings, backfill_batch=2))
    assert [r.tags[REASON_TAG] for r in evaluate_schedule(small, instance)] == ["failed", "missing"]


def test_nothing_to_do_is_a_skip_that_lists_what_is_not_retried(settings, defs, instance, drop_sample, register, materialize) -> None:
    drop_sample("one_runner.mp4")
    (settings.inbox / "corrupt.mp4").write_bytes(b"junk" * 100)
    keys = register()
    for key in keys.values():
        materialize(defs, key)
    skip = evaluate_schedule(defs, instance)
    assert isinstance(skip, dg.SkipReason)
    assert "1 done, 1 given_up; requesting 0 run(s)" in skip.skip_message
    assert f"not retried: {keys['corrupt.mp4']}:" in skip.skip_message


def test_a_run_being_canceled_is_waited_for_and_a_canceled_run_is_not_retried(settings, defs, instance, register) -> None:
    """CANCELING may still change the partition (wait, request nothing); CANCELED means a person stopped the
    latest run on purpose (give up until they run it again), whatever failed before it."""
    for name in ("canceling.mp4", "canceled.mp4", "failed_then_canceled.mp4", "canceled_then_failed.mp4"):
        (settings.inbox / name).write_bytes(name.encode() * 50)
    keys = register()

    def cancel(key: str, finish: bool) -> dg.DagsterRun:
        """Terminate a running run as the UI does: CANCELING until its process has stopped, then CANCELED."""
        run = add_run(instance, key, dg.DagsterRunStatus.STARTED)
        instance.report_run_canceling(run)
        if finish:
            instance.report_run_canceled(run)
        return instance.get_run_by_id(run.run_id)

    assert cancel(keys["canceling.mp4"], finish=False).status == dg.DagsterRunStatus.CANCELING
    assert cancel(keys["canceled.mp4"], finish=True).status == dg.DagsterRunStatus.CANCELED
    add_run(instance, keys["failed_then_canceled.mp4"], dg.DagsterRunStatus.FAILURE)
    cancel(keys["failed_then_canceled.mp4"], finish=True)
    cancel(keys["canceled_then_failed.mp4"], finish=True)
    add_run(instance, keys["canceled_then_failed.mp4"], dg.DagsterRunStatus.FAILURE)

    states = {s.key: s for s in classify_partitions(instance, SelfHostedBackend().identity().workflow_version)}
    assert {name: states[key].status for name, key in keys.items()} == {
        "canceling.mp4": "in_progress",
        "canceled.mp4": "given_up",
        "failed_then_canceled.mp4": "given_up",
        "canceled_then_failed.mp4": "failed",  # only the latest run counts
    }
    assert "canceled by a person" in states[keys["canceled.mp4"]].detail

    requests = evaluate_schedule(defs, instance)
    assert [(r.partition_key, r.tags[REASON_TAG]) for r in requests] == [(keys["canceled_then_failed.mp4"], "failed")]
