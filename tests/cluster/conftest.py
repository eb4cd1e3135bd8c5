"""Many machines on 127.0.0.1: a real Postgres, Redis and SeaweedFS, the control plane's daemon (this
test process's services) and worker "machines" started with `video-assets worker` in their own mount
and UTS namespaces (own hostname, own home; the control plane's home and drop folders hidden)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from video_assets.ingest.library import VideoLibrary
from video_assets.runs import UNFINISHED, latest_run
from video_assets.runtime.instance import prepare_environment
from video_assets.runtime.services import Services, local_services
from video_assets.settings import Settings

CLI = str(Path(sys.executable).with_name("video-assets"))


RECORD_SEGMENT = """
import sys
from datetime import UTC, datetime, timedelta

import numpy as np

from video_assets.backends.base import BackendIdentity
from video_assets.settings import Settings
from video_assets.streams.segments import SegmentRecorder
from video_assets.streams.store import CameraStore, window_start

camera, frames = sys.argv[1], int(sys.argv[2])
store = CameraStore.from_settings(Settings.from_env())
recorder = SegmentRecorder(store, camera, BackendIdentity("self_hosted", "inline:test"), 60)
hour = window_start(datetime.now(UTC))
for i in range(frames):
    picture = np.zeros((48, 64, 3), np.uint8)
    recorder.add_frame(hour + timedelta(seconds=i), (), {}, size=(64, 48), source_fps=5.0, image=picture)
recorder.commit_due(force=True)
assert recorder.publish_error is None, recorder.publish_error
"""


@dataclass
class ManyMachines:
    settings: Settings
    instance: dg.DagsterInstance
    services: Services
    folder: Path
    prefix: str  # bucket/prefix of the cluster's data in the object store
    store: Any  # an s3fs filesystem on the object store, to look at what landed there
    redis: Any
    hidden: list[Path]
    machines: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start_worker(self, hostname: str, *args: str) -> subprocess.Popen:
        """`video-assets worker ARGS` on another "machine" (its own home; the control plane's folders hidden)."""
        from servers.cluster_services import machine_command

        env = {**os.environ, "VIDEO_ASSETS_HOME": str(self.folder / f"{hostname}-home")}
        log = open(self.folder / f"{hostname}.log", "ab")
        command = machine_command(hostname, self.hidden, [CLI, "worker", *args])
        self.machines[hostname] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self.machines[hostname]

    def record_camera(self, hostname: str, camera: str, frames: int) -> None:
        """A camera host (another "machine") commits one segment of `frames` frames of the current hour."""
        from servers.cluster_services import machine_command

        env = {**os.environ, "VIDEO_ASSETS_HOME": str(self.folder / f"{hostname}-home")}
        command = machine_command(hostname, self.hidden, [sys.executable, "-c", RECORD_SEGMENT, camera, str(frames)])
        subprocess.run(command, env=env, check=True, timeout=120)

    def kill_machine(self, hostname: str) -> None:
        """Every process of that machine at once, as if it lost power."""
        machine = self.machines.pop(hostname)
        os.killpg(machine.pid, signal.SIGKILL)
        machine.wait(timeout=30)

    def drop(self, source: Path, folder: Path, name: str) -> str:
        """Put a video into a drop folder of the control plane; its partition key."""
        shutil.copy2(source, folder / name)
        library = VideoLibrary.from_settings(self.settings)
        [dropped] = [f for f in library.scan() if f.path == folder / name]
        return library.key_for(dropped)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            self.services.check()
            assert time.monotonic() < deadline, f"no {what} after {timeout_s} s:\n{self.logs()}"
            time.sleep(1)

    def runs(self, keys: list[str]) -> dict[str, dg.DagsterRun | None]:
        return {key: latest_run(self.instance, key) for key in keys}

    def wait_for_end(self, keys: list[str], timeout_s: float = 300) -> dict[str, dg.DagsterRun]:
        done = lambda: all(r is not None and r.status not in UNFINISHED for r in self.runs(keys).values())  # noqa: E731
        self.wait_for(done, f"end of the runs of {keys}", timeout_s)
        return {key: run for key, run in self.runs(keys).items() if run is not None}

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted(self.folder.glob("worker-*.log")))


@pytest.fixture
def many_machines(
    tmp_path: Path, postgres_server, postgres_dsn: str, object_store_server, s3_credentials, monkeypatch
) -> Iterator[ManyMachines]:
    """The control plane's services on a cluster file; start worker machines with `start_worker`."""
    import s3fs
    from servers.cluster_services import PASSWORD_ENV, cluster_file, redis

    database = postgres_dsn.split("dbname=")[1].split()[0]
    prefix = f"video-assets/{database}"  # one per test: each has its own database too
    home, faces = tmp_path / "home", tmp_path / "faces"
    faces.mkdir()
    with redis(tmp_path / "redis") as redis_server:
        env = {
            "VIDEO_ASSETS_HOME": str(home),
            "VIDEO_ASSETS_CLUSTER": str(
                cluster_file(tmp_path, postgres_server, database, redis_server.url, object_store_server.endpoint, prefix)
            ),
            "VIDEO_ASSETS_DROP_FOLDERS": f"faces={faces}",
            "VIDEO_ASSETS_SOURCE_QUEUES": "faces=gpu",
            "VIDEO_ASSETS_SENSOR_INTERVAL": "1",
            PASSWORD_ENV: postgres_server.password,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("ROBOFLOW_API_KEY", raising=False)
        settings = replace(Settings.from_env(dict(os.environ)), workers=2)
        prepare_environment(settings)
        store = s3fs.S3FileSystem(client_kwargs={"endpoint_url": object_store_server.endpoint}, use_listings_cache=False)
        cluster = None
        try:
            with local_services(settings) as services, dg.DagsterInstance.get() as instance:
                cluster = ManyMachines(settings, instance, services, tmp_path, prefix, store, redis_server, [home, faces])
                yield cluster
        finally:
            for hostname in list(cluster.machines if cluster else ()):
                cluster.kill_machine(hostname)
