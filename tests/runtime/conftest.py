"""A local cluster per test module: the real dagster-daemon and Celery run workers on a temp instance."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from video_assets.backends.self_hosted import DEFAULT_WORKFLOW_FILE
from video_assets.ingest.library import VideoLibrary
from video_assets.runs import UNFINISHED, latest_run
from video_assets.runtime.instance import prepare_environment
from video_assets.runtime.services import Services, local_services
from video_assets.settings import Settings
from video_assets.storage import table_file


@dataclass
class Cluster:
    settings: Settings
    instance: dg.DagsterInstance
    services: Services

    def drop(self, source: Path, name: str) -> str:
        """Put a video into the inbox; its partition key."""
        target = self.settings.inbox / name
        shutil.copy2(source, target)
        [dropped] = [f for f in VideoLibrary.from_settings(self.settings).scan() if f.path == target]
        return VideoLibrary.from_settings(self.settings).key_for(dropped)

    def wait_for_status(self, key: str, statuses: set[dg.DagsterRunStatus], timeout_s: float = 240) -> dg.DagsterRun:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.services.check()
            run = latest_run(self.instance, key)
            if run is not None and run.status in statuses:
                return run
            time.sleep(0.5)
        raise AssertionError(f"no run of {key} reached {statuses} in {timeout_s} s (last: {run and run.status})")

    def wait_for_end(self, key: str, timeout_s: float = 240) -> dg.DagsterRun:
        finished = set(dg.DagsterRunStatus) - UNFINISHED - {dg.DagsterRunStatus.MANAGED}
        return self.wait_for_status(key, finished, timeout_s)

    def worker_pid(self, run_id: str) -> int:
        """The run worker process that executed the run (from Dagster's own engine event)."""
        for entry in self.instance.all_logs(run_id):
            found = re.search(r"Started process for run \(pid: (\d+)\)", entry.message or "")
            if found:
                return int(found.group(1))
        raise AssertionError(f"run {run_id} has no 'Started process' event")

    def rows(self, table: str, key: str, columns: list[str]) -> list[dict]:
        return pq.read_table(table_file(self.settings.predictions_dir, table, key), columns=columns).to_pylist()


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Services for the whole module; `workers` (module attribute WORKERS, default 1) run worker processes."""
    home = tmp_path_factory.mktemp("cluster")
    settings = replace(Settings.from_env({}), home=home, sensor_interval_s=1, workers=getattr(request.module, "WORKERS", 1))
    workflow = home / "workflow.json"  # a copy the tests may change between runs
    shutil.copy(DEFAULT_WORKFLOW_FILE, workflow)
    settings = replace(settings, backend=replace(settings.backend, values={"workflow_file": str(workflow)}))
    with pytest.MonkeyPatch.context() as env:
        # What the services load their settings from; restored when the module is done.
        for name, value in {
            "VIDEO_ASSETS_HOME": str(home),
            "DAGSTER_HOME": str(settings.dagster_home),
            "VIDEO_ASSETS_SENSOR_INTERVAL": "1",
            "VIDEO_ASSETS_WORKFLOW": str(workflow),
            "VIDEO_ASSETS_WORKERS": str(settings.workers),
        }.items():
            env.setenv(name, value)
        env.delenv("ROBOFLOW_API_KEY", raising=False)
        prepare_environment(settings)
        with local_services(settings) as services, dg.DagsterInstance.get() as instance:
            yield Cluster(settings, instance, services)
