"""One recorder per camera: two workers would record every frame twice.

On one machine a file lock does it (the kernel releases it if the worker dies). On many machines a
lease in Redis does: a key set only if absent (`SET NX PX`) that the worker renews while it records and
deletes when it stops; a worker that dies stops renewing and the key expires within `ttl_s`, so another
host may take the camera over. A worker that loses its lease (Redis emptied, or renewal impossible
for longer than the lease) stops recording rather than risk a second recorder.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class WorkerAlreadyRunning(RuntimeError):
    """Another worker holds this camera: two would record every frame twice."""


class Lease:
    """Held while a camera is recorded; `lost` is set if it can no longer be guaranteed."""

    def __init__(self) -> None:
        self.lost = threading.Event()


def holder_name() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


@contextmanager
def file_lease(path: Path, camera: str) -> Iterator[Lease]:
    """Held for the worker's lifetime; the kernel releases it if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise WorkerAlreadyRunning(_already(camera, handle.read().strip() or "another process")) from None
        handle.seek(0)
        handle.truncate()
        handle.write(holder_name())
        handle.flush()
        try:
            yield Lease()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)


@contextmanager
def redis_lease(url: str, camera: str, ttl_s: float = 15.0) -> Iterator[Lease]:
    """A lease in Redis at `url` (which may carry the password), renewed every third of `ttl_s`."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=ttl_s / 3)
    key, holder, ttl_ms = f"video-assets:camera:{camera}", holder_name(), int(ttl_s * 1000)
    if not client.set(key, holder, nx=True, px=ttl_ms):
        current: Any = client.get(key)  # bytes (a synchronous client)
        raise WorkerAlreadyRunning(_already(camera, current.decode() if current else "another worker"))
    lease, stop = Lease(), threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                if not client.eval(_RENEW, 1, key, holder, str(ttl_ms)):
                    lease.lost.set()  # someone else holds it now (or it expired): stop recording
                    return
            except redis.RedisError:
                pass  # retried at the next renewal; the lease survives ttl_s without one

    renewer = threading.Thread(target=renew, name=f"lease-{camera}", daemon=True)
    renewer.start()
    try:
        yield lease
    finally:
        stop.set()
        renewer.join(timeout=ttl_s)
        try:
            client.eval(_RELEASE, 1, key, holder)
        except redis.RedisError:
            pass  # it expires by itself


def _already(camera: str, holder: str) -> str:
    return f"Camera {camera!r} is already being recorded by {holder}; stop that worker first (two workers would record every frame twice)."
