"""What a person does in the Dagster UI, done the way the UI does it: GraphQL over HTTP to the real
webserver that `video-assets dev` starts, with the real daemon and run workers behind it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION
from servers.live_ui import LiveUi, live_ui

from video_assets.backends.self_hosted import DEFAULT_WORKFLOW_FILE

pytestmark = pytest.mark.slow

STALE_STATUS = """
query ($partitions: [String!]) {
  assetNodes(assetKeys: [{path: ["frame_predictions"]}]) {
    staleStatusByPartition(partitions: $partitions)
    staleCausesByPartition(partitions: $partitions) { reason }
  }
}"""
RELOAD = 'mutation { reloadRepositoryLocation(repositoryLocationName: "video_assets") { __typename } }'


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUi]:
    home = tmp_path_factory.mktemp("ui")
    workflow = home / "workflow.json"  # a copy the test changes
    shutil.copy(DEFAULT_WORKFLOW_FILE, workflow)
    with live_ui(home, {"VIDEO_ASSETS_WORKFLOW": str(workflow)}) as started:
        yield started


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

