"""Shared fixtures: synthetic videos made once per session, a fresh VIDEO_ASSETS_HOME and instance per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from video_assets.definitions import build_definitions
from video_assets.samples import SAMPLES, write_samples
from video_assets.settings import Settings

FIXED_MTIME = 1_700_000_000.0  # 2023-11-14T22:13:20Z: frame timestamps derive from it


@pytest.fixture(scope="session")
def samples_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("samples")
    write_samples(folder, mtime=FIXED_MTIME)
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    home = tmp_path / "home"
    settings = Settings(home=home, sensor_interval_s=1)
    settings.inbox.mkdir(parents=True)
    return settings


@pytest.fixture
def instance(settings: Settings) -> dg.DagsterInstance:
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    with dg.instance_for_test(temp_dir=str(settings.dagster_home)) as instance:
        yield instance


@pytest.fixture
def defs(settings: Settings) -> dg.Definitions:
    return build_definitions(settings)


def drop_sample(settings: Settings, samples_dir: Path, name: str, as_name: str | None = None) -> Path:
    """Copy a sample video into the inbox, keeping its fixed mtime."""
    target = settings.inbox / (as_name or name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(samples_dir / name, target)
    return target


def sample(name: str):
    return next(s for s in SAMPLES if s.name == name)


API_KEY = "rf_TEST_KEY_d41d8cd98f00b204"  # distinctive, so a leak anywhere is found by a plain search


@pytest.fixture
def fake_api(tmp_path: Path):
    from fakes.roboflow_video_api import FakeVideoApi

    api = FakeVideoApi(root=tmp_path / "fake_api", api_key=API_KEY).start()
    yield api
    api.stop()
