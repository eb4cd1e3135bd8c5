"""`video-assets dev` serves the UI with the daemon and run workers, and leaves nothing behind when stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest
import requests

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_dev_serves_the_ui_and_stops_within_seconds_leaving_nothing_running(tmp_path, stop, cli, processes_using) -> None:
    home = tmp_path / "home"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "VIDEO_ASSETS_HOME": str(home)}
    dev = subprocess.Popen([cli, "dev", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert dev.poll() is None, dev.stdout.read()
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            raise AssertionError("the UI did not come up")
        running = processes_using(home)
        assert any("dagster-daemon" in c for c in running) and any("celery" in c for c in running), running

        dev.send_signal(stop)
        stopped_at = time.monotonic()
        assert dev.wait(timeout=15) == 0
        assert time.monotonic() - stopped_at < 10
        time.sleep(0.5)
        assert processes_using(home) == []
    finally:
        if dev.poll() is None:
            dev.kill()
