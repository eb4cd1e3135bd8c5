"""What a person does in the Dagster UI, done the way the UI does it: GraphQL over HTTP to the real
webserver that `video-assets dev` starts, with the real daemon and run workers behind it."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
import requests
from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION

from video_assets.backends.self_hosted import DEFAULT_WORKFLOW_FILE
from video_assets.runs import UNFINISHED
from video_assets.runtime.instance import prepare_environment
from video_assets.runtime.services import local_services
from video_assets.settings import Settings

pytestmark = pytest.mark.slow

STALE_STATUS = """
query ($partitions: [String!]) {
  assetNodes(assetKeys: [{path: ["frame_predictions"]}]) {
    staleStatusByPartition(partitions: $partitions)
    staleCausesByPartition(partitions: $partitions) { reason }
  }
}"""
RELOAD = 'mutation { reloadRepositoryLocation(repositoryLocationName: "video_assets") { __typename } }'


class Ui:
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
        while time.monotonic() < deadline:
            runs = self.instance.get_runs(filters=dg.RunsFilter(tags=tags))
            if len(runs) >= count and all(r.status not in UNFINISHED for r in runs):
                return runs
            time.sleep(1)
        raise AssertionError(f"{count} runs with {tags} did not finish: {[(r.run_id, r.status) for r in runs]}")


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    home = tmp_path_factory.mktemp("ui")
    workflow = home / "workflow.json"
    shutil.copy(DEFAULT_WORKFLOW_FILE, workflow)
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "VIDEO_ASSETS_HOME": str(home),
            "DAGSTER_HOME": str(home / "dagster"),
            "VIDEO_ASSETS_SENSOR_INTERVAL": "1",
            "VIDEO_ASSETS_WORKFLOW": str(workflow),
        }.items():
            env.setenv(name, value)
        settings = replace(Settings.from_env(), workers=2)
        prepare_environment(settings)
        port = _free_port()
        with local_services(settings, webserver_args=["--port", str(port), "--host", "127.0.0.1"]) as services:
            url = f"http://127.0.0.1:{port}"
            _wait_for(url, services)
            with dg.DagsterInstance.get() as instance:
                yield Ui(url, settings, instance)


def test_a_workflow_change_marks_old_partitions_stale_and_a_ui_backfill_refreshes_them(ui, samples_dir) -> None:
    for name in ("one_runner.mp4", "empty_hallway.mp4"):
        shutil.copy2(samples_dir / name, ui.settings.inbox / name)
    first = ui.wait_for_runs({"dagster/sensor_name": "drop_folder_sensor"}, count=2)
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in first)
    keys = {Path(r.tags["video_assets/file"]).name: r.tags["dagster/partition"] for r in first}
    partitions = [keys["one_runner.mp4"], keys["empty_hallway.mp4"]]
    fresh = ui.graphql(STALE_STATUS, {"partitions": partitions})["assetNodes"][0]
    assert fresh["staleStatusByPartition"] == ["FRESH", "FRESH"]

    workflow = Path(ui.settings.backend.values["workflow_file"])
    spec = json.loads(workflow.read_text())
    spec["steps"][0]["threshold"] = 20  # another workflow version
    workflow.write_text(json.dumps(spec))
    assert ui.graphql(RELOAD)["reloadRepositoryLocation"]["__typename"] == "WorkspaceLocationEntry"
    stale = ui.graphql(STALE_STATUS, {"partitions": partitions})["assetNodes"][0]
    assert stale["staleStatusByPartition"] == ["STALE", "STALE"]
    assert all("code version" in cause["reason"] for causes in stale["staleCausesByPartition"] for cause in causes)

    launched = ui.graphql(
        LAUNCH_PARTITION_BACKFILL_MUTATION,
        {
            "backfillParams": {
                "partitionNames": [keys["one_runner.mp4"]],
                "assetSelection": [{"path": ["raw_video"]}, {"path": ["frame_predictions"]}],
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    [rerun] = ui.wait_for_runs({"dagster/backfill": launched["backfillId"]}, count=1)
    assert rerun.status == dg.DagsterRunStatus.SUCCESS and rerun.tags["dagster/partition"] == keys["one_runner.mp4"]

    after = ui.graphql(STALE_STATUS, {"partitions": partitions})["assetNodes"][0]
    assert after["staleStatusByPartition"] == ["FRESH", "STALE"]  # exactly the re-run one is fresh


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(url: str, services, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        services.check()
        try:
            if requests.get(f"{url}/server_info", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the webserver did not answer at {url}")
