"""What a person or a dying process does to runs on the workers: a canceled run ends CANCELED and is not
retried; a killed run process fails only its own run, within seconds, and the backfill retries it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from video_assets.backends.self_hosted import SelfHostedBackend
from video_assets.predictions.backfill import classify_partitions
from video_assets.runs import failure_of
from video_assets.samples import MovingObject, SampleVideo, write_sample

pytestmark = pytest.mark.slow
WORKERS = 2  # a second worker process goes on with other videos while one run is killed


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough (1,500 frames) to be stopped mid-run."""
    sample = SampleVideo("long.mp4", frames=1500, fps=25, objects=(MovingObject("slow", 40, 180, 0.35, 48, 96, seed=5),))
    return write_sample(sample, tmp_path_factory.mktemp("long") / "long.mp4")


def another_copy(source: Path, target: Path) -> Path:
    """The same frames in another file (another video key)."""
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-c", "copy", "-metadata", f"title={target.stem}", str(target)], check=True)
    return target


def wait_until_predicting(cluster, key: str) -> dg.DagsterRun:
    """The run, once its frame_predictions step has started."""
    run = cluster.wait_for_status(key, {dg.DagsterRunStatus.STARTED})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = cluster.instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_START).records
        if any(r.event_log_entry.step_key == "frame_predictions" for r in started):
            time.sleep(1.0)  # well into the video
            return run
        time.sleep(0.2)
    raise AssertionError(f"frame_predictions of {key} did not start")


@contextmanager
def paused(pids: list[int]) -> Iterator[None]:
    """Worker processes stopped mid-video (SIGSTOP), so their runs last as long as the test needs."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def states(cluster) -> dict:
    version = SelfHostedBackend(workflow_file=cluster.settings.backend.values["workflow_file"]).identity().workflow_version
    return {s.key: s for s in classify_partitions(cluster.instance, version)}


def test_a_canceled_run_ends_canceled_and_is_not_retried(cluster, long_clip) -> None:
    key = cluster.drop(long_clip, "cancel_me.mp4")
    run = wait_until_predicting(cluster, key)

    assert cluster.instance.run_coordinator.cancel_run(run.run_id)  # what Terminate in the UI does
    ended = cluster.wait_for_end(key, timeout_s=60)

    assert ended.status == dg.DagsterRunStatus.CANCELED
    assert states(cluster)[key].status == "given_up"  # the nightly backfill leaves it alone
    folder = cluster.settings.predictions_dir / "frames" / f"video_id={key}"
    assert not folder.exists() or not any(folder.iterdir())  # nothing half-written left, visible or not


def test_a_killed_run_process_fails_its_run_only_and_is_retried(cluster, long_clip, samples_dir, tmp_path) -> None:
    victim = cluster.drop(another_copy(long_clip, tmp_path / "victim.mp4"), "victim.mp4")
    run = wait_until_predicting(cluster, victim)
    bystander = cluster.drop(samples_dir / "two_walkers.mp4", "bystander.mp4")

    killed_pid = cluster.worker_pid(run.run_id)
    os.kill(killed_pid, signal.SIGKILL)  # what a decoder crash does to the worker process
    killed_at = time.monotonic()
    ended = cluster.wait_for_end(victim, timeout_s=60)

    assert ended.status == dg.DagsterRunStatus.FAILURE
    assert time.monotonic() - killed_at < 30  # run monitoring noticed the lost worker process
    message, permanent = failure_of(cluster.instance, ended.run_id)
    assert not permanent and "Celery task failed" in message, message
    assert states(cluster)[victim].status == "failed"  # retried by the nightly backfill like any transient failure
    assert cluster.wait_for_end(bystander).status == dg.DagsterRunStatus.SUCCESS  # the others go on

    after = cluster.drop(another_copy(samples_dir / "one_runner.mp4", tmp_path / "after.mp4"), "after.mp4")
    rerun = cluster.wait_for_end(after)
    assert rerun.status == dg.DagsterRunStatus.SUCCESS
    assert cluster.worker_pid(rerun.run_id) != killed_pid  # the dead process was replaced


def test_a_run_waiting_behind_another_can_be_canceled_and_never_runs(cluster, long_clip, tmp_path) -> None:
    """On one machine a second run waits in Celery behind each worker process's run (STARTING)."""
    busy = [cluster.drop(another_copy(long_clip, tmp_path / f"busy{i}.mp4"), f"busy{i}.mp4") for i in range(WORKERS)]
    with paused([cluster.worker_pid(wait_until_predicting(cluster, key).run_id) for key in busy]):
        # However slowly the sensor submits the next run, the busy ones cannot end before it arrives.
        waiting = cluster.drop(another_copy(long_clip, tmp_path / "waiting.mp4"), "waiting.mp4")
        run = cluster.wait_for_status(waiting, {dg.DagsterRunStatus.STARTING})

        assert cluster.instance.run_coordinator.cancel_run(run.run_id)
        ended = cluster.wait_for_end(waiting, timeout_s=120)  # CANCELING, then CANCELED by run monitoring

    assert ended.status == dg.DagsterRunStatus.CANCELED
    assert not cluster.instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_START).records
    assert states(cluster)[waiting].status == "given_up"
    assert all(cluster.wait_for_end(key).status == dg.DagsterRunStatus.SUCCESS for key in busy)
