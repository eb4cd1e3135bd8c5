"""`video-assets cameras run`: one worker process per camera, restarted if it dies, stopped cleanly.

Each worker runs in its own process so that a camera whose decoder hangs or crashes never stops the
others, each gets its own core and its own OpenCV capture options, and its memory is reclaimed when it
restarts. The supervisor passes each worker's output, with credentials removed, to
`<VIDEO_ASSETS_HOME>/logs/cameras/<camera>.log` and prints its own messages on the terminal. On
SIGTERM or Ctrl-C it asks every worker to stop (SIGTERM), and waits for each to commit its last segment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from video_assets.settings import Settings
from video_assets.streams.cameras import Camera, CameraConfigError
from video_assets.streams.store import CameraStore
from video_assets.streams.worker import EXIT_CONFIG, EXIT_LOCKED

Echo = Callable[[str], None]
POLL_S = 0.5
MAX_RESTART_DELAY_S = 60.0
OWN_LOGGER = "video_assets.camera:"  # the worker's own messages, echoed on the terminal too


@dataclass
class _Worker:
    camera: Camera
    log_path: Path
    process: subprocess.Popen | None = None
    pump: threading.Thread | None = None
    restart_delay_s: float = 1.0
    next_start: float = 0.0
    started: float = 0.0
    given_up: bool = False


def run_workers(settings: Settings, names: list[str], echo: Echo, stop_timeout_s: float = 60.0) -> int:
    """Run until SIGTERM/SIGINT (0 if every worker then stopped cleanly), or until every worker gave up (1)."""
    store = CameraStore.from_settings(settings)
    try:
        config = store.config()
        cameras = [config.get(n) for n in names] if names else list(config.cameras)
    except CameraConfigError as exc:
        echo(f"video-assets: {exc}")
        return 2
    if not cameras:
        echo(f'No cameras configured in {config.path}; add one, for example:\n\n[cameras.lobby]\nurl = "rtsp://..."\n')
        return 2
    log_dir = settings.logs_dir / "cameras"
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = [_Worker(camera, log_dir / f"{camera.name}.log") for camera in cameras]
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        _supervise(workers, stop, echo)
        return _stop_all(workers, echo, stop_timeout_s) if stop.is_set() else 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _supervise(workers: list[_Worker], stop: threading.Event, echo: Echo) -> None:
    while not stop.is_set() and not all(w.given_up for w in workers):
        for worker in workers:
            if worker.given_up:
                continue
            if worker.process is None:
                if time.monotonic() >= worker.next_start:
                    _start(worker, echo)
                continue
            code = worker.process.poll()
            if code is None:
                continue
            if worker.pump is not None:
                worker.pump.join(timeout=5)
            worker.process = None
            if time.monotonic() - worker.started > MAX_RESTART_DELAY_S:
                worker.restart_delay_s = 1.0  # it ran well for a while: not a crash loop
            if code in (EXIT_CONFIG, EXIT_LOCKED):
                worker.given_up = True
                echo(f"{worker.camera.name}: not restarted (exit code {code}); see {worker.log_path}")
            else:
                echo(
                    f"{worker.camera.name}: worker exited with code {code}; restarting in {worker.restart_delay_s:g} s"
                )
                worker.next_start = time.monotonic() + worker.restart_delay_s
                worker.restart_delay_s = min(worker.restart_delay_s * 2, MAX_RESTART_DELAY_S)
        stop.wait(POLL_S)


def _start(worker: _Worker, echo: Echo) -> None:
    command = [
        sys.executable,
        "-m",
        "video_assets.streams.worker",
        worker.camera.name,
        f"--supervisor-pid={os.getpid()}",
    ]
    # A session of its own: Ctrl-C reaches the supervisor only, which stops the workers in order.
    worker.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    worker.started = time.monotonic()
    worker.pump = threading.Thread(target=_pump, args=(worker, worker.process.stdout, echo), daemon=True)
    worker.pump.start()
    echo(
        f"{worker.camera.name}: worker pid {worker.process.pid} recording {worker.camera.display_url} "
        f"(log: {worker.log_path})"
    )


def _pump(worker: _Worker, output: IO[bytes], echo: Echo) -> None:
    """Copy the worker's output to its log file, credentials removed; echo its own messages."""
    with open(worker.log_path, "a", buffering=1) as log:
        for raw in output:
            line = worker.camera.redact(raw.decode(errors="replace").rstrip("\n"))
            log.write(line + "\n")
            if OWN_LOGGER in line:
                echo(line.split(OWN_LOGGER, 1)[1].strip())


def _stop_all(workers: list[_Worker], echo: Echo, timeout_s: float) -> int:
    running = [(w, w.process) for w in workers if w.process is not None and w.process.poll() is None]
    echo(f"Stopping {len(running)} worker(s); each commits its last segment first")
    for _, process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    clean = True
    for worker, process in running:
        try:
            code = process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
            echo(f"{worker.camera.name}: did not stop within {timeout_s:g} s and was killed; its open segment is lost")
        if worker.pump is not None:
            worker.pump.join(timeout=5)
        clean = clean and code == 0
    return 0 if clean else 1
