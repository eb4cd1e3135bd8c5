"""The batch backend against a local server implementing Roboflow Data Staging and Batch Processing
(tests/fakes/roboflow_batch_api.py): real Dagster runs, real Parquet, a real SQLite ledger."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from video_assets.backends.batch.ledger import NAME, SCHEMA, SqlBatchLedger
from video_assets.backends.ledger_db import SqliteDatabase
from video_assets.definitions import build_definitions
from video_assets.settings import API_KEY_ENV, REPO_DIR, Settings

BATCH_STEPS = ("raw_video", "batch_job", "frame_predictions")
WORKFLOW = {"workspace": "acme", "workflow_id": "count-people"}


@pytest.fixture(autouse=True)
def api_key_env(monkeypatch, api_key: str) -> None:
    monkeypatch.setenv(API_KEY_ENV, api_key)


@pytest.fixture(autouse=True)
def the_key_never_leaks(settings: Settings, caplog, api_key: str) -> Iterator[None]:
    """After each test: no file under VIDEO_ASSETS_HOME (event log, Parquet, ledger, downloads) and no log line holds the key."""
    caplog.set_level(logging.DEBUG)  # urllib3 logs request lines, query strings included, at DEBUG
    yield
    leaks = [p for p in settings.home.rglob("*") if p.is_file() and api_key.encode() in p.read_bytes()]
    assert leaks == []
    assert api_key not in caplog.text


@pytest.fixture
def batch_api(tmp_path: Path, api_key: str):
    from fakes.roboflow_batch_api import FakeBatchApi

    api = FakeBatchApi(root=tmp_path / "fake_batch_api", api_key=api_key).start()
    yield api
    api.stop()


@pytest.fixture
def batch_settings(with_backend, batch_api) -> Callable[..., Settings]:
    """Settings deployed with the batch backend on the fake (fast polls, no window unless a test sets one);
    `overrides` are other backend fields."""

    def configure(kind: str = "batch", **overrides: Any) -> Settings:
        values = {
            "api_url": batch_api.url, **WORKFLOW, "poll_seconds": 0.01, "backoff_seconds": 0.01,
            "request_timeout_seconds": 5.0, "batch_window_seconds": 0.0,
        }
        return with_backend(kind, api_key_set=True, **{**values, **overrides})

    return configure


@pytest.fixture
def dropped(drop_sample, register) -> Callable[..., dict[str, str]]:
    """Drop sample videos into the inbox and register their partitions as the sensor would: name -> key."""

    def drop(*names: str) -> dict[str, str]:
        for name in names:
            drop_sample(name)
        keys = register()
        return {name: keys[name] for name in names}

    return drop


@pytest.fixture
def run_batch(materialize) -> Callable[..., dg.ExecuteInProcessResult]:
    """One run of the batch steps (or `steps`) for a partition, with the code location `settings` define."""

    def run(settings: Settings, key: str, steps: tuple[str, ...] = BATCH_STEPS, run_config: dict | None = None):
        return materialize(build_definitions(settings), key, steps, run_config)

    return run


@pytest.fixture
def batch_ledger(settings: Settings) -> SqlBatchLedger:
    return SqlBatchLedger(SqliteDatabase(settings.state_dir / f"{NAME}.sqlite", NAME, SCHEMA))


@pytest.fixture(scope="session")
def metadata() -> Callable[[dg.ExecuteInProcessResult, str], dict]:
    """An asset's materialization metadata in a run, as plain values."""

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
