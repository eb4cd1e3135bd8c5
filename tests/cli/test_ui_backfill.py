"""A backfill launched the way the UI launches one (GraphQL), run by Dagster's own backfill daemon code."""

import time

import dagster as dg
import pytest
from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql

from video_assets.cli.driver import UNFINISHED, DagsterDriver
from video_assets.cli.instance import prepare_environment


@pytest.mark.slow
def test_ui_backfill_over_dynamic_partitions(settings, drop_sample, video_keys, monkeypatch) -> None:
    monkeypatch.setenv("VIDEO_ASSETS_HOME", str(settings.home))
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    prepare_environment(settings)
    for name in ("one_runner.mp4", "empty_hallway.mp4"):
        drop_sample(name)
    keys = sorted(video_keys().values())

    with dg.DagsterInstance.get() as instance, DagsterDriver(instance) as driver:
        instance.add_dynamic_partitions("videos", keys)
        launched = execute_dagster_graphql(
            driver.request_context(),
            LAUNCH_PARTITION_BACKFILL_MUTATION,
            variables={
                "backfillParams": {
                    "partitionNames": keys,
                    "assetSelection": [{"path": ["raw_video"]}, {"path": ["frame_predictions"]}],
                }
            },
        )
        assert launched.data["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", launched.data
        backfill_id = launched.data["launchPartitionBackfill"]["backfillId"]

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            driver.run_backfills()
            driver.launch_queued_runs()
            runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
            if len(runs) == len(keys) and all(r.status not in UNFINISHED for r in runs):
                break
            time.sleep(1)
        assert sorted(r.tags["dagster/partition"] for r in runs) == keys
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        materialized = instance.get_materialized_partitions(dg.AssetKey("frame_predictions"))
        assert materialized == set(keys)
    for key in keys:
        assert (settings.predictions_dir / "frames" / f"video_id={key}" / "part-0.parquet").exists()
