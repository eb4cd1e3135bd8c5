"""Runs in separate processes, as run workers execute them: they share staging batches and jobs through the
ledger alone, and a run killed with SIGKILL at the worst moment leaves nothing to pay twice."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import dagster as dg
import pytest

from video_assets.backends.batch.backend import marker_of
from video_assets.ingest.library import VideoLibrary
from video_assets.predictions.assets import FRAME_PREDICTIONS

pytestmark = pytest.mark.slow


def finish(process, timeout_s: float = 300) -> str:
    out, _ = process.communicate(timeout=timeout_s)
    return out


def wait_for(condition, process, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, f"the run ended before {what}: {process.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def test_videos_ready_together_share_one_batch_and_one_job_and_land_on_their_own(
    batch_api, dropped, run_process, prediction_rows, batch_ledger, settings, api_key
) -> None:
    keys = dropped("two_walkers.mp4", "one_runner.mp4", "empty_hallway.mp4")
    runs = [run_process(key, VIDEO_ASSETS_BATCH_WINDOW="12", VIDEO_ASSETS_POLL_SECONDS="0.3") for key in keys.values()]
    outputs = [finish(run) for run in runs]
    for key, out in zip(keys.values(), outputs, strict=True):
        assert f"RESULT {key} True" in out, out[-4000:]
        assert api_key not in out

    [job] = batch_api.jobs.values()
    assert len(job.videos) == 3 and batch_api.count("upload") == 3 and batch_api.count("create_job") == 1
    assert batch_api.count("job") == 4  # the job needed 4 status reads: one per interval across all three runs

    frames: dict[str, list[int]] = defaultdict(list)
    for row in prediction_rows("frames"):
        frames[row["video_id"]].append(row["frame_idx"])
    strides = {"two_walkers.mp4": (150, 3), "one_runner.mp4": (120, 4), "empty_hallway.mp4": (60, 3)}
    for name, key in keys.items():
        count, stride = strides[name]
        assert sorted(frames[key]) == list(range(0, count, stride)), name

    library = VideoLibrary.from_settings(settings)
    group_id = job.definition["jobInput"]["batchId"]
    assert batch_ledger.group(group_id).state == "done"
    assert {m.state for m in batch_ledger.members(group_id)} == {"exported"}
    assert {m.file_name.split("-")[0] for m in batch_ledger.members(group_id)} == {marker_of(library.probe(k)) for k in keys.values()}

    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        latest = {
            key: instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=FRAME_PREDICTIONS, asset_partitions=[key]), limit=1
            ).records
            for key in keys.values()
        }
    assert all(len(records) == 1 for records in latest.values())
    assert len({records[0].run_id for records in latest.values()}) == 3  # each video materialized by its own run
    processed = {name: latest[key][0].asset_materialization.metadata["frames_processed"].value for name, key in keys.items()}
    assert processed == {"two_walkers.mp4": 50, "one_runner.mp4": 30, "empty_hallway.mp4": 20}


def test_a_run_killed_while_starting_the_job_leaves_it_to_the_next_run_which_does_not_start_another(
    batch_api, dropped, run_process, prediction_rows, batch_ledger
) -> None:
    key = dropped("two_walkers.mp4")["two_walkers.mp4"]
    batch_api.inject("create_job", delay_s=3.0)  # the service acts on the POST 3 s later, after the client is gone
    first = run_process(key, VIDEO_ASSETS_BATCH_LEASE="1")
    try:
        wait_for(lambda: batch_api.count("create_job") >= 1, first, "the job was posted")
    finally:
        first.kill()  # SIGKILL: no cleanup, the ledger holds what was committed
        first.wait(timeout=30)
    [staging_batch] = batch_api.batches
    group = batch_ledger.group(staging_batch)
    assert group.state == "submitting" and group.frames_estimate == 50

    second = run_process(key, VIDEO_ASSETS_BATCH_LEASE="1")
    out = finish(second)
    assert f"RESULT {key} True" in out, out[-4000:]
    assert len(batch_api.jobs) == 1 and batch_api.count("upload") == 1
    posts = [r for r in batch_api.requests if r.endpoint == "create_job"]
    assert {r.path for r in posts} == {f"/batch-processing/v1/external/acme/jobs/{group.job_id}"}
    assert all(r.body == posts[0].body for r in posts)  # sent again (if at all) under the same id, identical
    assert len(prediction_rows("frames")) == 50


def test_a_run_killed_while_waiting_is_resumed_by_the_next_run_on_the_same_job(batch_api, dropped, run_process, prediction_rows) -> None:
    key = dropped("two_walkers.mp4")["two_walkers.mp4"]
    batch_api.hold_jobs = True
    first = run_process(key)
    try:
        wait_for(lambda: batch_api.count("job") >= 3, first, "it polled the job")
    finally:
        first.kill()
        first.wait(timeout=30)
    batch_api.hold_jobs = False
    polls_before = batch_api.count("job")
    out = finish(run_process(key))
    assert f"RESULT {key} True" in out, out[-4000:]
    assert batch_api.count("create_job") == 1 and batch_api.count("upload") == 1
    [job_id] = batch_api.jobs
    resumed = [r for r in batch_api.requests[polls_before:] if r.endpoint == "job"]
    assert resumed and all(r.path.endswith(f"/jobs/{job_id}") for r in resumed)
    assert len(prediction_rows("frames")) == 50


def test_video_assets_process_puts_videos_dropped_together_in_one_job(tmp_path, samples_dir, batch_api, api_key) -> None:
    """The CLI as a user runs it: the sensor's runs execute on separate Celery worker processes, join one batch."""
    home = tmp_path / "cli_home"
    (home / "inbox").mkdir(parents=True)
    names = ("two_walkers.mp4", "one_runner.mp4", "empty_hallway.mp4")
    for name in names:
        shutil.copy2(samples_dir / name, home / "inbox" / name)
    env = {
        **os.environ,
        "VIDEO_ASSETS_HOME": str(home),
        "VIDEO_ASSETS_SENSOR_INTERVAL": "1",
        "VIDEO_ASSETS_WORKERS": "3",
        "VIDEO_ASSETS_BACKEND": "batch",
        "VIDEO_ASSETS_BATCH_WINDOW": "15",
        "ROBOFLOW_API_KEY": api_key,
        "ROBOFLOW_API_URL": batch_api.url,
        "ROBOFLOW_WORKSPACE": "acme",
        "ROBOFLOW_WORKFLOW": "count-people",
        "VIDEO_ASSETS_POLL_SECONDS": "0.2",
    }
    cli = str(Path(sys.executable).with_name("video-assets"))
    done = subprocess.run([cli, "process"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {name: next(line for line in done.stdout.splitlines() if line.startswith(f"inbox/{name}")) for name in names}
    assert all(" success " in line for line in lines.values()), lines
    assert " 50/50 " in lines["two_walkers.mp4"] and " 30/30 " in lines["one_runner.mp4"] and " 20/20 " in lines["empty_hallway.mp4"]
    [job] = batch_api.jobs.values()
    assert len(job.videos) == 3 and batch_api.count("create_job") == 1
    leaks = [p for p in home.rglob("*") if p.is_file() and api_key.encode() in p.read_bytes()]
    assert leaks == [] and api_key not in done.stdout + done.stderr
