"""`video-assets dev`'s services on a temporary home, for the tests that use the UI as a person does:
the real webserver (GraphQL over HTTP), the media server, the daemon and the run workers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
import requests

from video_assets.runs import UNFINISHED
from video_assets.runtime.instance import prepare_environment
from video_assets.runtime.services import local_services
from video_assets.settings import Settings


class LiveUi:
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


@contextmanager
def live_ui(home: Path, env: dict[str, str]) -> Iterator[LiveUi]:
    """The services on `home`, with these settings in the environment (restored afterwards)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "VIDEO_ASSETS_HOME": str(home),
            "DAGSTER_HOME": str(home / "dagster"),
            "VIDEO_ASSETS_SENSOR_INTERVAL": "1",
            "VIDEO_ASSETS_MEDIA_PORT": str(free_port()),
            **env,
        }.items():
            patch.setenv(name, value)
        settings = replace(Settings.from_env(), workers=2)
        prepare_environment(settings)
        port = free_port()
        with local_services(settings, webserver_args=["--port", str(port), "--host", "127.0.0.1"]) as services:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while not _answers(f"{url}/server_info"):
                services.check()
                assert time.monotonic() < deadline, f"the webserver did not answer at {url}"
                time.sleep(0.5)
            with dg.DagsterInstance.get() as instance:
                yield LiveUi(url, settings, instance)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.ConnectionError:
        return False
