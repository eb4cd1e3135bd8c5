"""Many machines on 127.0.0.1: the Dagster instance in a real Postgres, Celery over a real Redis, every
byte in SeaweedFS's S3 server, and two worker "machines" (own mount and UTS namespaces, own hostname,
own VIDEO_ASSETS_HOME, the control plane's home and drop folders hidden) started with `video-assets
worker`. Runs are routed by queue and land on the machine that took them; the control plane answers
SQL from what the workers put in the store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from video_assets.ingest.library import VideoLibrary
from video_assets.predictions.assets import FRAME_PREDICTIONS
from video_assets.runs import UNFINISHED, latest_run
from video_assets.runtime.instance import prepare_environment
from video_assets.runtime.services import local_services
from video_assets.settings import Settings

pytestmark = pytest.mark.slow
PASSWORD_ENV = "VIDEO_ASSETS_TEST_PG_PASSWORD"
PREFIX = "video-assets/cluster-test"  # bucket/prefix in the object store


def cluster_file(folder: Path, postgres_server, database: str, redis_url: str, store_endpoint: str) -> Path:
    path = folder / "cluster.toml"
    path.write_text(
        f'[postgres]\nhost = "127.0.0.1"\nport = {postgres_server.port}\ndatabase = "{database}"\n'
        f'user = "{postgres_server.user}"\npassword_env = "{PASSWORD_ENV}"\n\n'
        f'[redis]\nurl = "{redis_url}"\n\n'
        f'[store]\nurl = "s3://{PREFIX}"\nendpoint = "{store_endpoint}"\n'
    )
    return path


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator:
    from servers.cluster_services import redis

    with redis(tmp_path / "redis") as server:
        yield server


def start_machine(hostname: str, args: list[str], folder: Path, hidden: list[Path]) -> subprocess.Popen:
    """`video-assets worker` on another "machine": its own home; the control plane's folders hidden."""
    from servers.cluster_services import machine_command

    command = machine_command(hostname, hidden, [str(Path(sys.executable).with_name("video-assets")), "worker", *args])
    env = {**os.environ, "VIDEO_ASSETS_HOME": str(folder / f"{hostname}-home")}
    log = open(folder / f"{hostname}.log", "ab")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_runs(instance: dg.DagsterInstance, keys: list[str], machines: list[subprocess.Popen], timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert all(m.poll() is None for m in machines), "a worker machine exited"
        runs = {key: latest_run(instance, key) for key in keys}
        if all(run is not None and run.status not in UNFINISHED for run in runs.values()):
            return runs
        time.sleep(1)
    raise AssertionError(f"runs not finished in {timeout_s} s: {[(k, r and r.status) for k, r in runs.items()]}")


def test_runs_spread_over_two_worker_machines_by_queue(
    tmp_path, samples_dir, postgres_server, postgres_dsn, redis_server, object_store_server, s3_credentials, monkeypatch
) -> None:
    database = postgres_dsn.split("dbname=")[1].split()[0]
    home, faces = tmp_path / "home", tmp_path / "faces"
    faces.mkdir()
    env = {
        "VIDEO_ASSETS_HOME": str(home),
        "VIDEO_ASSETS_CLUSTER": str(
            cluster_file(tmp_path, postgres_server, database, redis_server.url, object_store_server.endpoint)
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
    import s3fs

    store = s3fs.S3FileSystem(client_kwargs={"endpoint_url": object_store_server.endpoint}, use_listings_cache=False)
    prepare_environment(settings)
    assert "postgres_db" in (settings.dagster_home / "dagster.yaml").read_text()
    assert postgres_server.password not in (settings.dagster_home / "dagster.yaml").read_text()

    hidden = [home, faces]
    cpu = start_machine("worker-cpu", ["--concurrency", "1"], tmp_path, hidden)
    gpu = start_machine("worker-gpu", ["--queue", "gpu", "--concurrency", "1"], tmp_path, hidden)
    try:
        for name in ("two_walkers.mp4", "one_runner.mp4"):
            shutil.copy2(samples_dir / name, settings.inbox / name)
        shutil.copy2(samples_dir / "empty_hallway.mp4", faces / "hallway_at_the_gpu.mp4")
        library = VideoLibrary.from_settings(settings)
        keys = {f"{f.source}/{f.path.name}": library.key_for(f) for f in library.scan()}
        with local_services(settings) as services, dg.DagsterInstance.get() as instance:
            runs = wait_for_runs(instance, list(keys.values()), [cpu, gpu])
            services.check()
            assert {r.status for r in runs.values()} == {dg.DagsterRunStatus.SUCCESS}, _logs(tmp_path)
            hosts = {
                name: instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=FRAME_PREDICTIONS, asset_partitions=[key]), limit=1
                ).records[0].asset_materialization.metadata["host"].value
                for name, key in keys.items()
            }
            assert runs[keys["faces/hallway_at_the_gpu.mp4"]].tags.get("dagster-celery/queue") == "gpu"
            # the SQL models, built by automation on a worker (one model a run), published to the store;
            # the control plane reads them
            wait_for(lambda: sql("select count(*) from video_summary") == ["3"], "video_summary of 3 videos")
    finally:
        for machine in (cpu, gpu):
            os.killpg(machine.pid, 15)
        for machine in (cpu, gpu):
            machine.wait(timeout=60)
    # the faces drop folder's video went to the gpu queue, whose only worker is worker-gpu; the rest to worker-cpu
    assert hosts == {
        "inbox/two_walkers.mp4": "worker-cpu",
        "inbox/one_runner.mp4": "worker-cpu",
        "faces/hallway_at_the_gpu.mp4": "worker-gpu",
    }
    # every byte in the object store: the videos (uploaded once by the control plane), their Parquet,
    # compute logs; nothing on the control plane's disk but its own state
    for key in keys.values():
        assert store.exists(f"{PREFIX}/videos/{key}") and store.exists(f"{PREFIX}/videos/{key}.json")
        assert store.exists(f"{PREFIX}/predictions/videos/video_id={key}/part-0.parquet")
    assert store.find(f"{PREFIX}/compute-logs"), "no compute log in the object store"
    assert not (home / "predictions").exists() or not any((home / "predictions").rglob("*.parquet"))


def sql(query: str) -> list[str]:
    """`video-assets sql` on the control plane: the rows of the answer as CSV lines (none on an error)."""
    command = [str(Path(sys.executable).with_name("video-assets")), "sql", query, "--csv"]
    answer = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return answer.stdout.splitlines()[1:] if answer.returncode == 0 else []


def wait_for(condition, what: str, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {timeout_s} s"
        time.sleep(1)


def _logs(folder: Path) -> str:
    return "\n".join(p.read_text()[-3000:] for p in folder.glob("worker-*.log"))
