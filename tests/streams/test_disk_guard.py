"""A real camera worker on a real HLS stream, its home on a 16 MB filesystem: when free space falls below
VIDEO_ASSETS_MIN_FREE it pauses and says why (status file, `cameras status`, the camera sensor's
observation), and it resumes by itself once space returns, the pause recorded as a `disk_guard` gap."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pyarrow.dataset as ds
import pytest
from servers.live_servers import CameraProcess, HlsServer, short_gop_video

from video_assets.definitions import build_definitions
from video_assets.settings import Settings
from video_assets.streams.sensor import SENSOR_NAME

pytestmark = pytest.mark.live
THRESHOLD = "VIDEO_ASSETS_MIN_FREE=4.0 MB"


def sensor_observation(home: Path) -> dict:
    """The camera sensor's observation of the worker, evaluated as the daemon would (second tick: partitions known)."""
    settings = Settings.from_env({"VIDEO_ASSETS_HOME": str(home), "VIDEO_ASSETS_MIN_FREE": "4MB"})
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        cursor = None
        for _ in range(2):
            with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources) as context:
                result = defs.get_sensor_def(SENSOR_NAME)(context)
            for request in result.dynamic_partitions_requests:
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            cursor = result.cursor
    [observation] = result.asset_events
    return {k: v.value for k, v in observation.metadata.items()}


def test_a_camera_worker_pauses_on_a_full_disk_and_resumes_when_space_returns(
    small_disk, samples_dir, tmp_path, monkeypatch
) -> None:
    video = short_gop_video(samples_dir / "two_walkers.mp4", tmp_path / "walkers.mp4")
    server = HlsServer(video, tmp_path / "hls")
    home = small_disk.path / "home"
    home.mkdir()
    (home / "cameras.toml").write_text(f'segment_seconds = 2\n[cameras.lobby]\nurl = "{server.url}"\nmax_fps = 5\n')
    monkeypatch.setenv("VIDEO_ASSETS_MIN_FREE", "4MB")
    server.start()
    worker = CameraProcess.worker(home, "lobby")
    try:
        worker.wait_status(lambda s: s["state"] == "streaming" and s["segments_committed"] >= 1, "a committed segment")
        small_disk.fill(leave=2 * 2**20)
        paused = worker.wait_status(lambda s: s["state"] == "paused", "the worker to pause")
        assert paused["detail"].startswith("disk guard: ") and THRESHOLD in paused["detail"]

        status = subprocess.run(
            [str(Path(sys.executable).with_name("video-assets")), "cameras", "status"],
            env={**os.environ, "VIDEO_ASSETS_HOME": str(home)}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert status.returncode == 0 and "lobby: paused: disk guard: " in status.stdout and THRESHOLD in status.stdout
        observed = sensor_observation(home)
        assert observed["worker_state"] == "paused" and THRESHOLD in observed["worker_detail"]

        during = worker.status()
        time.sleep(4)  # two segment lengths: nothing is recorded while paused
        assert (worker.status()["frames_processed"], worker.status()["segments_committed"]) == (
            during["frames_processed"], during["segments_committed"],
        )  # fmt: skip

        small_disk.clear()
        worker.wait_status(
            lambda s: s["state"] == "streaming" and s["frames_processed"] >= during["frames_processed"] + 10,
            "the worker to resume",
        )
        assert worker.terminate() == 0
    finally:
        worker.kill()
        server.stop()
    streams = home / "streams"
    gaps = ds.dataset(sorted(streams.glob("lobby/*/*/camera_gaps.parquet")), format="parquet").to_table().to_pylist()
    assert [g["cause"] for g in gaps if g["cause"] == "disk_guard"] == ["disk_guard"]
    [pause] = [g for g in gaps if g["cause"] == "disk_guard"]
    assert pause["duration_s"] >= 4
    assert not list(streams.rglob("*.tmp"))
