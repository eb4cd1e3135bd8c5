"""The hosted backend against a local server implementing Roboflow's video API (the `fake_api` fixture)."""

from __future__ import annotations

from typing import Any, Callable

import dagster as dg
import pytest

from video_assets.backends.hosted.ledger import NAME, SCHEMA, JobLedger
from video_assets.backends.ledger_db import SqliteDatabase
from video_assets.definitions import build_definitions
from video_assets.settings import API_KEY_ENV, Settings

HOSTED_STEPS = ("raw_video", "uploaded_video", "inference_job", "frame_predictions")


@pytest.fixture(autouse=True)
def api_key_env(monkeypatch, api_key) -> None:
    monkeypatch.setenv(API_KEY_ENV, api_key)


@pytest.fixture
def walkers_key(drop_sample, register) -> str:
    drop_sample("two_walkers.mp4")
    return register()["two_walkers.mp4"]


@pytest.fixture
def hosted(with_backend, fake_api) -> Callable[..., Settings]:
    """Settings whose backend is the fake hosted API, as a deployment would set it: the `models` form
    (ROBOFLOW_MODEL) or the `workflow` form (a saved workflow); `overrides` are other backend fields.
    ROBOFLOW_API_KEY is set for every test here; `api_key_set=False` deploys as if it were not."""

    def configure(form: str = "models", kind: str = "hosted", api_key_set: bool = True, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "api_url": fake_api.url,
            "poll_seconds": 0.01,
            "backoff_seconds": 0.01,
            "request_timeout_seconds": 5.0,
        }
        values.update({"model": "people-detect/3"} if form == "models" else {"workspace": "acme", "workflow_id": "count-people"})
        return with_backend(kind, api_key_set=api_key_set, **{**values, **overrides})

    return configure


@pytest.fixture
def run_hosted(materialize) -> Callable[..., dg.ExecuteInProcessResult]:
    """One run of the hosted steps (or `steps`) for a partition, with the code location `settings` define."""

    def run(settings: Settings, key: str, steps: tuple[str, ...] = HOSTED_STEPS, run_config: dict | None = None):
        return materialize(build_definitions(settings), key, steps, run_config)

    return run


@pytest.fixture
def ledger(settings) -> JobLedger:
    """The hosted job ledger of the test's VIDEO_ASSETS_HOME."""
    return JobLedger(SqliteDatabase(settings.state_dir / f"{NAME}.sqlite", NAME, SCHEMA))
