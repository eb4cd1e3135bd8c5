"""Fixtures of the preview tests: a headless Chromium, and the UI with the media server behind it."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
import requests
from browsers.chromium import Chromium, chromium_binary

from video_assets.runs import UNFINISHED
from video_assets.runtime.instance import prepare_environment
from video_assets.runtime.services import local_services
from video_assets.settings import Settings


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Chromium]:
    if chromium_binary() is None:
        pytest.fail("Chromium is not installed (apt-get install -y chromium): the UI tests need a real browser")
    browser = Chromium(tmp_path / "chromium-profile", width=1920, height=2000)
    try:
        yield browser
    finally:
        browser.close()


class LiveUi:
    """`video-assets dev`'s services on a temporary home: the webserver, the media server, the daemon, workers."""

    def __init__(self, url: str, settings: Settings, instance: dg.DagsterInstance):
        self.url, self.settings, self.instance = url, settings, instance

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        answer = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
        answer.raise_for_status()
        body = answer.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def wait_for_runs(self, tags: dict[str, str], count: int, timeout_s: float = 300) -> list[dg.DagsterRun]:
        deadline = time.monotonic() + timeout_s
        runs: list[dg.DagsterRun] = []
        while time.monotonic() < deadline:
            runs = self.instance.get_runs(filters=dg.RunsFilter(tags=tags))
            if len(runs) >= count and all(r.status not in UNFINISHED for r in runs):
                return runs
            time.sleep(1)
        raise AssertionError(f"{count} runs with {tags} did not finish: {[(r.run_id, r.status) for r in runs]}")


@pytest.fixture(scope="module")
def live_ui(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Iterator[LiveUi]:
    home = tmp_path_factory.mktemp("ui")
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "VIDEO_ASSETS_HOME": str(home),
            "DAGSTER_HOME": str(home / "dagster"),
            "VIDEO_ASSETS_SENSOR_INTERVAL": "1",
            "VIDEO_ASSETS_MEDIA_PORT": str(_free_port()),
        }.items():
            env.setenv(name, value)
        settings = replace(Settings.from_env(), workers=2)
        prepare_environment(settings)
        port = _free_port()
        with local_services(settings, webserver_args=["--port", str(port), "--host", "127.0.0.1"]) as services:
            url = f"http://127.0.0.1:{port}"
            _wait_for(f"{url}/server_info", services)
            with dg.DagsterInstance.get() as instance:
                yield LiveUi(url, settings, instance)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(url: str, services, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        services.check()
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"nothing answered at {url}")


@pytest.fixture(scope="module")
def copy_sample(samples_dir: Path):
    def copy(name: str, inbox: Path) -> Path:
        return Path(shutil.copy2(samples_dir / name, inbox / name))

    return copy
