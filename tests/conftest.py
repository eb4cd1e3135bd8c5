"""Shared fixtures: synthetic videos made once per session, a fresh VIDEO_ASSETS_HOME and instance per test,
and the few steps many tests take (drop a file, register it as the sensor would, run its assets, read a table).

Helpers are fixtures (often returning a function), so test modules never import each other.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import dagster as dg
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from video_assets.definitions import build_definitions
from video_assets.ingest.files import scan_drop_folders
from video_assets.ingest.library import VideoLibrary
from video_assets.predictions.schema import TABLES
from video_assets.samples import SAMPLES, SampleVideo, write_samples
from video_assets.settings import BackendSettings, Settings
from video_assets.storage import table_file
from video_assets.streams.status import WorkerStatus

FIXED_MTIME = 1_700_000_000.0  # 2023-11-14T22:13:20Z: frame timestamps derive from it
API_KEY = "rf_TEST_KEY_d41d8cd98f00b204"  # distinctive, so a leak anywhere is found by a plain search
HAND_MADE_TS = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
VIDEO_STEPS = ("raw_video", "frame_predictions")


@pytest.fixture(scope="session")
def samples_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("samples")
    write_samples(folder, mtime=FIXED_MTIME)
    return folder


@pytest.fixture(scope="session")
def fixed_mtime() -> float:
    """The mtime of every sample file: a recording is taken to end then."""
    return FIXED_MTIME


@pytest.fixture(scope="session")
def api_key() -> str:
    return API_KEY


@pytest.fixture(scope="session")
def sample() -> Callable[[str], SampleVideo]:
    """A sample video's definition (frames, fps, true boxes) by file name."""
    return lambda name: next(s for s in SAMPLES if s.name == name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    home = tmp_path / "home"
    settings = Settings(home=home, sensor_interval_s=1)
    settings.inbox.mkdir(parents=True)
    return settings


@pytest.fixture
def instance(settings: Settings) -> Iterator[dg.DagsterInstance]:
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    with dg.instance_for_test(temp_dir=str(settings.dagster_home)) as instance:
        yield instance


@pytest.fixture
def defs(settings: Settings) -> dg.Definitions:
    return build_definitions(settings)


@pytest.fixture
def with_backend(settings: Settings) -> Callable[..., Settings]:
    """`settings` with another `backend` resource: its kind and the fields a deployment would set.

    `api_key_set=True` binds ROBOFLOW_API_KEY (set it with monkeypatch), as Settings.from_env does when it is set.
    """

    def configure(kind: str = "self_hosted", *, api_key_set: bool = False, **values: Any) -> Settings:
        return dataclasses.replace(settings, backend=BackendSettings(kind=kind, values=values, api_key_set=api_key_set))

    return configure


@pytest.fixture
def drop_sample(settings: Settings, samples_dir: Path) -> Callable[..., Path]:
    """Copy a sample video into the inbox (or `as_name` below it), keeping its fixed mtime."""

    def drop(name: str, as_name: str | None = None) -> Path:
        target = settings.inbox / (as_name or name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(samples_dir / name, target)
        return target

    return drop


@pytest.fixture
def video_keys(settings: Settings) -> Callable[[], dict[str, str]]:
    """File (relative to its drop folder) -> the partition key the sensor gives it."""

    def keys() -> dict[str, str]:
        library = VideoLibrary.from_settings(settings)
        return {f.relative_path: library.key_for(f) for f in scan_drop_folders(settings.drop_folders)}

    return keys


@pytest.fixture
def register(instance: dg.DagsterInstance, video_keys: Callable[[], dict[str, str]]) -> Callable[[], dict[str, str]]:
    """What the sensor does for each stable file: add its partition. Returns file name -> partition key."""

    def add() -> dict[str, str]:
        keys = video_keys()
        instance.add_dynamic_partitions("videos", list(keys.values()))
        return keys

    return add


@pytest.fixture
def materialize(instance: dg.DagsterInstance) -> Callable[..., dg.ExecuteInProcessResult]:
    """Run assets of `defs` (by name) for one partition, as a run on the test instance; failures are returned."""

    def run(
        defs: dg.Definitions,
        key: str | None = None,
        names: tuple[str, ...] = VIDEO_STEPS,
        run_config: dict | None = None,
    ) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [defs.get_assets_def(n) for n in names],
            partition_key=key,
            instance=instance,
            resources=defs.resources,
            run_config=run_config,
            raise_on_error=False,
        )

    return run


@pytest.fixture(scope="session")
def failure_message() -> Callable[[dg.ExecuteInProcessResult], str]:
    """The descriptions of a run's step failures (what a person reads in the UI)."""

    def message(result: dg.ExecuteInProcessResult) -> str:
        return "\n".join(
            e.step_failure_data.user_failure_data.description
            for e in result.all_events
            if e.is_step_failure and e.step_failure_data.user_failure_data
        )

    return message


@pytest.fixture
def prediction_rows(settings: Settings) -> Callable[[str], list[dict]]:
    """Every row of one prediction table under `settings` (detections, frames, videos, camera_*)."""
    return lambda table: ds.dataset(settings.predictions_dir / table, format="parquet").to_table().to_pylist()


@pytest.fixture
def write_video(settings: Settings) -> Callable[..., None]:
    """Hand-made prediction tables for one video, to inject exactly the data a test needs.

    `frames` is a frame count (every frame stamped `ts`, no outputs) or a list of (frame_ts, outputs)
    readings; detections (one box each) sit on the frame indexes in `detections_on`.
    """

    def write(
        video_id: str,
        frames: int | list[tuple[datetime, dict[str, Any]]],
        detections_on: Sequence[int] = (),
        frames_table: bool = True,
        ts: datetime = HAND_MADE_TS,
        backend: str = "self_hosted",
    ) -> None:
        readings = [(ts, {})] * frames if isinstance(frames, int) else list(frames)
        start = readings[0][0] if readings else ts
        common = {"video_id": video_id, "source": video_id.split("@")[0] if "@" in video_id else "inbox",
                  "workflow_version": "inline:x", "backend": backend}

        def at(i: int) -> dict:
            frame_ts = readings[i][0] if i < len(readings) else ts
            offset = (frame_ts - start).total_seconds() if isinstance(frames, list) else i / 10
            return {**common, "frame_idx": i, "time_offset_s": offset, "frame_ts": frame_ts}

        tables = {
            "detections": [{**at(i), "class_name": "person", "class_id": 0, "confidence": 0.9, "x": 1.0, "y": 1.0,
                            "width": 1.0, "height": 1.0, "tracker_id": 1} for i in detections_on],
            "videos": [{**common, "file": f"{video_id}.mp4", "sha256": "0" * 64, "bytes": 1,
                        "duration_s": len(readings) / 10, "fps": 10.0, "width": 64, "height": 64, "rotation": 0, "codec": "h264",
                        "recorded_at": start, "frames_expected": len(readings), "frames_processed": len(readings),
                        "processed_at": ts}],
        }
        if frames_table:
            tables["frames"] = [
                {**at(i), "detection_count": list(detections_on).count(i), "outputs": json.dumps(outputs, sort_keys=True)}
                for i, (_, outputs) in enumerate(readings)
            ]
        for table, rows in tables.items():
            path = table_file(settings.predictions_dir, table, video_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=TABLES[table]), path)

    return write


@pytest.fixture(scope="session")
def worker_status() -> Callable[..., WorkerStatus]:
    """A camera worker's status as it writes it, streaming and healthy unless `changes` say otherwise."""

    def status(**changes: Any) -> WorkerStatus:
        now = datetime.now(timezone.utc).isoformat()
        healthy = WorkerStatus(
            camera="lobby", url="rtsp://***@10.0.0.5/s", mode="realtime", max_fps=None, pid=4242, state="streaming",
            detail="", started_at=now, updated_at=now, last_frame_ts=now, fps=15.0, frames_received=100,
            frames_processed=100, frames_dropped=0, reconnects=0, gaps=0, gap_seconds=0.0, segments_committed=1,
            last_segment=None, last_error=None,
        )
        return dataclasses.replace(healthy, **changes)

    return status


@dataclasses.dataclass
class SmallDisk:
    """A tmpfs of a few MB: filled with a ballast file to run out of space, emptied to get it back."""

    path: Path

    @property
    def ballast(self) -> Path:
        return self.path / "ballast.bin"

    def free(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Grow the ballast until at most `leave` bytes are free (0: until the disk is full)."""
        chunk = b"\0" * 65536
        with open(self.ballast, "ab") as out:
            try:
                while self.free() > leave:
                    out.write(chunk[: max(min(len(chunk), self.free() - leave), 1)])
                    out.flush()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise

    def clear(self) -> None:
        self.ballast.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A real 16 MB filesystem (tmpfs, mounted as root), always unmounted afterwards."""
    mount = tmp_path / "small_disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"the disk-full tests mount a small tmpfs and need root: {mounted.stderr.strip()}")
    try:
        yield SmallDisk(mount)
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(mount)], check=True)  # a process still holds a file there


@pytest.fixture
def fake_api(tmp_path: Path, api_key: str):
    """A local server implementing Roboflow's hosted video API (tests/fakes/roboflow_video_api.py)."""
    from fakes.roboflow_video_api import FakeVideoApi

    api = FakeVideoApi(root=tmp_path / "fake_api", api_key=api_key).start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real PostgreSQL server on 127.0.0.1 for the session (started when a test first asks for it)."""
    from servers.cluster_services import postgres

    with postgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres_server: Any) -> str:
    """A new, empty database on the session's Postgres server (libpq keywords, password included)."""
    import uuid

    name = f"test_{uuid.uuid4().hex[:12]}"
    server = postgres_server
    server.create_database(name)
    return f"host=127.0.0.1 port={server.port} dbname={name} user={server.user} password='{server.password}'"


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str, str], Any]:
    """Open a job ledger's database: a SQLite file (one machine), or a real Postgres (many machines)."""
    from video_assets.backends.ledger_db import PostgresDatabase, SqliteDatabase

    if request.param == "sqlite":
        return lambda name, schema: SqliteDatabase(tmp_path / f"{name}.sqlite", name, schema)
    dsn = request.getfixturevalue("postgres_dsn")
    return lambda name, schema: PostgresDatabase(dsn, name, schema)


@pytest.fixture(scope="session")
def object_store_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """SeaweedFS's real S3 server on 127.0.0.1 for the session (started when a test first asks for it)."""
    from servers.cluster_services import object_store

    with object_store(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The object store's keys, where every S3 client reads them: the environment."""
    from servers.cluster_services import ACCESS_KEY, SECRET_KEY

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
