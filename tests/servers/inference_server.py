"""Start the real inference server (stream API) on 127.0.0.1 for a test session, and stop it by its process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

TESTS_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def inference_server(workdir: Path, startup_timeout_s: float = 240.0) -> Iterator[str]:
    # HttpInterface mounts ./inference/landing/out/{static,_next/static}; the pip package has no landing page.
    for folder in ("inference/landing/out/static", "inference/landing/out/_next/static"):
        (workdir / folder).mkdir(parents=True, exist_ok=True)
    port, manager_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
        "ENABLE_STREAM_API": "True",
        "STREAM_MANAGER_HOST": "127.0.0.1",
        "STREAM_MANAGER_PORT": str(manager_port),
        "OFFLINE_MODE": "True",
        "DISABLE_VERSION_CHECK": "True",
        "MODEL_CACHE_DIR": str(workdir / "model_cache"),
        "CORE_MODEL_SAM_ENABLED": "False",
        "CORE_MODEL_SAM3_ENABLED": "False",
        "CORE_MODEL_YOLO_WORLD_ENABLED": "False",
    }
    log = open(workdir / "inference_server.log", "wb")
    command = [sys.executable, "-m", "uvicorn", "servers.inference_server_app:app", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(server, url, workdir, startup_timeout_s)
        yield url
    finally:
        _stop_group(server)
        log.close()


def _wait_until_ready(server: subprocess.Popen, url: str, workdir: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the inference server exited:\n{(workdir / 'inference_server.log').read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/inference_pipelines/list", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"the inference server did not answer within {timeout_s:.0f} s")


def _stop_group(server: subprocess.Popen) -> None:
    """uvicorn, its stream manager and the pipeline processes share the group started above."""
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait_s)
            time.sleep(0.5)  # let the manager's children exit with it
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(server.pid, signal.SIGKILL)  # stragglers of the group (the stream manager ignores SIGTERM while busy)
    except ProcessLookupError:
        pass
