"""Real stream servers on 127.0.0.1 for the camera tests, and a camera worker run as a real process.

- HLS: ffmpeg writes a live playlist (1 s segments) from a looped sample video; `python -m http.server`
  serves it. Stopping the HTTP server is the outage; ffmpeg keeps writing meanwhile, like a camera.
- RTSP: Debian's `rtsp-server-perl` (UDP transport only), fed by ffmpeg. Stopping both is the outage.

Every process is started in its own session and stopped by its pid (process group), never by name.
Missing binaries fail the test with the command that installs them; they never skip it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

DEBIAN_PACKAGES = "apt-get install -y ffmpeg rtsp-server-perl"
WAIT_S = 90.0  # a deadline for liveness on a shared 2-core machine, not a speed expectation


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"`{binary}` is not installed; the camera tests need real stream servers: {DEBIAN_PACKAGES}")
    return path


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    condition: Callable[[], Any], what: str, timeout_s: float = WAIT_S, explain: Callable[[], str] = str
) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"gave up waiting for {what} after {timeout_s:g} s\n{explain()}")


def stop_process(process: subprocess.Popen | None, timeout_s: float = 10.0) -> int | None:
    if process is None or process.poll() is not None:
        return None if process is None else process.returncode
    os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


def spawn(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)


def short_gop_video(source: Path, target: Path) -> Path:
    """A keyframe every second, so HLS can cut 1 s segments and RTSP clients can join mid-stream."""
    command = [require("ffmpeg"), "-v", "error", "-y", "-i", str(source), "-c:v", "libx264", "-preset", "veryfast"]
    command += ["-g", "15", "-keyint_min", "15", "-sc_threshold", "0", "-pix_fmt", "yuv420p", str(target)]
    subprocess.run(command, check=True, timeout=120)
    return target


class HlsServer:
    def __init__(self, video: Path, folder: Path):
        self.video, self.folder = video, folder
        self.port = free_port()
        self.publisher: subprocess.Popen | None = None
        self.http: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.m3u8"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.publisher = spawn(
            [require("ffmpeg"), "-v", "error", "-re", "-stream_loop", "-1", "-i", str(self.video), "-c", "copy",
             "-f", "hls", "-hls_time", "1", "-hls_list_size", "6", "-hls_flags", "delete_segments",
             str(self.folder / "live.m3u8")],
            self.folder.parent / "hls-ffmpeg.log",
        )  # fmt: skip
        wait_for(lambda: (self.folder / "live.m3u8").exists(), "the first HLS playlist")
        self.start_http()

    def start_http(self) -> None:
        command = [
            sys.executable,
            "-m",
            "http.server",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(self.folder),
        ]
        self.http = spawn(command, self.folder.parent / "hls-http.log")
        wait_for(lambda: _accepts(self.port), f"the HTTP server on port {self.port}")

    def stop_http(self) -> None:
        stop_process(self.http)
        self.http = None

    def stop(self) -> None:
        self.stop_http()
        stop_process(self.publisher)
        self.publisher = None


class RtspServer:
    """rtsp-server-perl: clients read rtsp://127.0.0.1:<client port>/cam, ffmpeg publishes to the source port."""

    def __init__(self, video: Path, folder: Path):
        self.video, self.folder = video, folder
        self.client_port, self.source_port, self.rtp_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
        self.server: subprocess.Popen | None = None
        self.publisher: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.client_port}/cam"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.server = spawn(
            [require("rtsp-server-perl"), "--clientport", str(self.client_port), "--serverport", str(self.source_port),
             "--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1",
             "--rtp_start_port", str(self.rtp_port)],
            self.folder / "rtsp-server.log",
        )  # fmt: skip
        wait_for(lambda: _accepts(self.client_port) and _accepts(self.source_port), "rtsp-server-perl to listen")
        self.publisher = spawn(
            [require("ffmpeg"), "-v", "error", "-re", "-stream_loop", "-1", "-i", str(self.video), "-c", "copy",
             "-f", "rtsp", f"rtsp://127.0.0.1:{self.source_port}/cam"],
            self.folder / "rtsp-ffmpeg.log",
        )  # fmt: skip

    def stop(self) -> None:
        stop_process(self.publisher)
        stop_process(self.server)
        self.publisher = self.server = None


class CameraProcess:
    """A camera worker run as a real process, and its status file.

    `command` is either the worker itself (`python -m video_assets.streams.worker <camera>`) or the
    supervisor (streams/supervisor.py, what `video-assets cameras run <camera>` runs), which starts that
    same worker with --supervisor-pid.
    """

    def __init__(self, home: Path, camera: str, command: list[str]):
        self.home, self.camera = home, camera
        self.log = home / f"process-{camera}.log"
        env = {**os.environ, "VIDEO_ASSETS_HOME": str(home)}
        self.process = spawn(command, self.log, env)

    @classmethod
    def worker(cls, home: Path, camera: str) -> CameraProcess:
        return cls(home, camera, [sys.executable, "-m", "video_assets.streams.worker", camera])

    @classmethod
    def supervisor(cls, home: Path, camera: str) -> CameraProcess:
        run = (
            "import sys\n"
            "from video_assets.settings import Settings\n"
            "from video_assets.streams.supervisor import run_workers\n"
            "sys.exit(run_workers(Settings.from_env(), sys.argv[1:], lambda line: print(line, flush=True)))\n"
        )
        return cls(home, camera, [sys.executable, "-c", run, camera])

    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.home / "streams" / self.camera / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def wait_status(self, condition: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            if self.process.poll() is not None:
                pytest.fail(f"the {self.camera} process exited with {self.process.returncode}\n{self.tail()}")
            status = self.status()
            return status if status and condition(status) else None

        return wait_for(check, what, explain=lambda: f"status: {self.status()}\n{self.tail()}")

    def terminate(self, timeout_s: float = 60.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        """Cleanup: the process, and the worker it may have started in a session of its own."""
        stop_process(self.process)
        worker_pid = self.status().get("pid")
        if worker_pid and worker_pid != self.process.pid:
            try:
                os.kill(worker_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
