"""`video-assets cameras status|run` as a user types them."""

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from servers.live_servers import CameraProcess, free_port
from video_assets.settings import Settings
from video_assets.streams.store import CameraStore

CLI = str(Path(sys.executable).with_name("video-assets"))


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIDEO_ASSETS_HOME": str(home)}
    return subprocess.run([CLI, "cameras", *args], env=env, capture_output=True, text=True, timeout=120)


def test_status_shows_each_camera_without_its_password(tmp_path, worker_status) -> None:
    (tmp_path / "cameras.toml").write_text(
        '[cameras.lobby]\nurl = "rtsp://admin:hunter22@10.0.0.5/s"\n'
        '[cameras.dock]\nurl = "https://cdn.example/dock.m3u8"\n'
    )
    now = datetime.now(timezone.utc)
    status = worker_status(
        state="streaming",
        updated_at=now.isoformat(),
        last_frame_ts=(now - timedelta(seconds=1)).isoformat(),
        fps=14.8,
        frames_processed=1200,
        frames_dropped=12,
        gaps=2,
        gap_seconds=7.5,
        reconnects=1,
        last_error="SourceConnectionError: timed out",
    )
    CameraStore.from_settings(Settings(home=tmp_path)).write_status("lobby", status)  # as the worker writes it
    result = cli(tmp_path, "status")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert lines["lobby"].split()[1:2] == ["streaming"]
    assert "14.8  1200       12       2     7.5    1           rtsp://***@10.0.0.5/s" in lines["lobby"]
    assert "never started" in lines["dock"]
    assert "lobby: last error: SourceConnectionError: timed out" in result.stdout
    assert "hunter22" not in result.stdout


def test_run_refuses_unknown_or_missing_cameras(tmp_path) -> None:
    missing = cli(tmp_path, "run")
    assert missing.returncode == 2 and "No cameras configured in" in missing.stdout
    (tmp_path / "cameras.toml").write_text('[cameras.lobby]\nurl = "rtsp://cam/s"\n')
    unknown = cli(tmp_path, "run", "dock")
    assert (
        unknown.returncode == 2 and "No camera named 'dock'" in unknown.stdout and "configured: lobby" in unknown.stdout
    )


@pytest.mark.live
def test_run_keeps_good_cameras_going_restarts_dead_workers_and_stops_cleanly(tmp_path) -> None:
    (tmp_path / "cameras.toml").write_text(
        f'[cameras.lobby]\nurl = "rtsp://127.0.0.1:{free_port()}/nobody-here"\n'
        '[cameras.broken]\nurl = "rtsp://viewer:${NOT_SET_ANYWHERE}@127.0.0.1/s"\n'
    )
    supervisor = CameraProcess(tmp_path, "lobby", [CLI, "cameras", "run"])  # every camera in the file
    try:
        first = supervisor.wait_status(lambda s: s.get("pid"), "the lobby worker")["pid"]
        os.kill(first, signal.SIGKILL)
        second = supervisor.wait_status(lambda s: s.get("pid") not in (None, first), "a restarted worker")["pid"]
        assert supervisor.terminate() == 0
        assert supervisor.status()["pid"] == second and supervisor.status()["state"] == "stopped"
    finally:
        supervisor.kill()
    output = supervisor.log.read_text()
    assert "broken: not restarted (exit code 2)" in output  # a misconfigured camera does not stop the others
    assert "lobby: worker exited with code -9; restarting in 1 s" in output
    assert "Stopping 1 worker(s)" in output
    broken_log = (tmp_path / "logs" / "cameras" / "broken.log").read_text()
    assert "its URL uses ${NOT_SET_ANYWHERE}, which is not set in the environment" in broken_log
