"""The batch backend against a local server implementing Roboflow Data Staging and Batch Processing
(tests/fakes/roboflow_batch_api.py): real Dagster runs, real Parquet, a real SQLite ledger."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.dataset as ds
import pytest

from video_assets.backends.batch.backend import LEDGER_FILE
from video_assets.backends.batch.ledger import SqliteBatchLedger
from video_assets.definitions import build_definitions
from video_assets.ingest.library import VideoLibrary
from video_assets.settings import API_KEY_ENV, REPO_DIR, BackendSettings, Settings

BATCH_KEY = "rf_BATCH_TEST_KEY_8f14e45fceea167a"  # distinctive, so a leak anywhere is found by a plain search
BATCH_STEPS = ("raw_video", "batch_job", "frame_predictions")
WORKFLOW = {"workspace": "acme", "workflow_id": "count-people"}


@pytest.fixture(scope="session")
def batch_key() -> str:
    return BATCH_KEY


@pytest.fixture(autouse=True)
def batch_key_env(monkeypatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, BATCH_KEY)


@pytest.fixture(autouse=True)
def the_key_never_leaks(settings: Settings, caplog) -> Iterator[None]:
    """After each test: no file under VIDEO_ASSETS_HOME (event log, Parquet, ledger, downloads) and no log line holds the key."""
    caplog.set_level(logging.DEBUG)  # urllib3 logs request lines, query strings included, at DEBUG
    yield
    leaks = [p for p in settings.home.rglob("*") if p.is_file() and BATCH_KEY.encode() in p.read_bytes()]
    assert leaks == []
    assert BATCH_KEY not in caplog.text


@pytest.fixture
def batch_api(tmp_path: Path):
    from fakes.roboflow_batch_api import FakeBatchApi

    api = FakeBatchApi(root=tmp_path / "fake_batch_api", api_key=BATCH_KEY).start()
    yield api
    api.stop()


@pytest.fixture
def batch_values(batch_api) -> dict[str, Any]:
    """The backend fields a deployment on the fake would set (fast polls, no window unless a test sets one)."""
    return {
        "api_url": batch_api.url, **WORKFLOW, "poll_seconds": 0.01, "backoff_seconds": 0.01,
        "request_timeout_seconds": 5.0, "batch_window_seconds": 0.0,
    }


@pytest.fixture
def batch_settings(settings: Settings, batch_values) -> Callable[..., Settings]:
    """`settings` deployed with the batch backend; `overrides` are other backend fields (or kind=...)."""

    def configure(kind: str = "batch", **overrides: Any) -> Settings:
        backend = BackendSettings(kind=kind, values={**batch_values, **overrides}, api_key_set=True)
        return dataclasses.replace(settings, backend=backend)

    return configure


@pytest.fixture
def dropped(settings: Settings, samples_dir: Path, instance: dg.DagsterInstance) -> Callable[..., dict[str, str]]:
    """Copy sample videos into the inbox and register their partitions as the sensor would: name -> key."""

    def drop(*names: str) -> dict[str, str]:
        for name in names:
            shutil.copy2(samples_dir / name, settings.inbox / name)
        library = VideoLibrary.from_settings(settings)
        keys = {f.relative_path: library.key_for(f) for f in library.scan()}
        instance.add_dynamic_partitions("videos", list(keys.values()))
        return {name: keys[name] for name in names}

    return drop


@pytest.fixture
def run_batch(instance: dg.DagsterInstance) -> Callable[..., dg.ExecuteInProcessResult]:
    """One run of the batch steps (or `steps`) for a partition, with the code location `settings` define."""

    def run(settings: Settings, key: str, steps: tuple[str, ...] = BATCH_STEPS, run_config: dict | None = None):
        defs = build_definitions(settings)
        return dg.materialize(
            [defs.get_assets_def(name) for name in steps], partition_key=key, instance=instance,
            resources=defs.resources, run_config=run_config, raise_on_error=False,
        )

    return run


@pytest.fixture(scope="session")
def failures() -> Callable[[dg.ExecuteInProcessResult], str]:
    """The step failure descriptions of a run (what a person reads in the UI); never the key."""

    def text(result: dg.ExecuteInProcessResult) -> str:
        described = "\n".join(
            e.step_failure_data.user_failure_data.description
            for e in result.all_events
            if e.is_step_failure and e.step_failure_data.user_failure_data
        )
        assert BATCH_KEY not in described
        return described

    return text


@pytest.fixture
def table(settings: Settings) -> Callable[[str], list[dict]]:
    return lambda name: ds.dataset(settings.predictions_dir / name, format="parquet").to_table().to_pylist()


@pytest.fixture
def batch_ledger(settings: Settings) -> SqliteBatchLedger:
    return SqliteBatchLedger(settings.state_dir / LEDGER_FILE)


@pytest.fixture
def metadata() -> Callable[[dg.ExecuteInProcessResult, str], dict]:
    def values(result: dg.ExecuteInProcessResult, asset: str) -> dict:
        [event] = result.asset_materializations_for_node(asset)
        return {k: v.value for k, v in event.metadata.items()}

    return values


RUN_SCRIPT = """
import sys, dagster as dg
from video_assets.definitions import build_definitions
from video_assets.settings import Settings
key = sys.argv[1]
defs = build_definitions(Settings.from_env())
with dg.DagsterInstance.get() as instance:
    instance.add_dynamic_partitions("videos", [key])
    result = dg.materialize([defs.get_assets_def(n) for n in ("raw_video", "batch_job", "frame_predictions")],
                            partition_key=key, instance=instance, resources=defs.resources, raise_on_error=False)
print("RESULT", key, result.success, flush=True)
"""


@pytest.fixture
def run_process(settings: Settings, batch_api) -> Callable[..., subprocess.Popen]:
    """A run of one partition in its own process, as a run worker executes it, configured from the environment."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)

    def start(key: str, **env: str) -> subprocess.Popen:
        environment = {
            **os.environ,
            "PYTHONPATH": str(REPO_DIR),
            "VIDEO_ASSETS_HOME": str(settings.home),
            "DAGSTER_HOME": str(settings.dagster_home),
            "VIDEO_ASSETS_BACKEND": "batch",
            "ROBOFLOW_API_URL": batch_api.url,
            "ROBOFLOW_WORKSPACE": WORKFLOW["workspace"],
            "ROBOFLOW_WORKFLOW": WORKFLOW["workflow_id"],
            "VIDEO_ASSETS_POLL_SECONDS": "0.05",
            "VIDEO_ASSETS_BATCH_WINDOW": "0",
            **env,
        }
        return subprocess.Popen(
            [sys.executable, "-c", RUN_SCRIPT, key], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    return start
