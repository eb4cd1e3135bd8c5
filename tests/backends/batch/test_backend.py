"""The batch path end to end: real Dagster runs against a local server implementing Batch Processing."""

from __future__ import annotations

import itertools

import dagster as dg
import pyarrow.parquet as pq
import pytest

from video_assets.backends.batch.backend import marker_of
from video_assets.definitions import build_definitions
from video_assets.ingest.library import VideoLibrary
from video_assets.predictions.schema import TABLES
from video_assets.settings import Settings

FORCE = {"resources": {"backend": {"config": {"force_resubmit": True}}}}


@pytest.mark.parametrize("frame_position", ["none", "frame_number", "frame_offset"])
def test_a_video_lands_the_three_tables_with_its_sampled_frames(
    frame_position, batch_api, batch_settings, dropped, run_batch, failure_message, prediction_rows, metadata, settings
) -> None:
    batch_api.frame_position = frame_position
    key = dropped("two_walkers.mp4")["two_walkers.mp4"]
    result = run_batch(batch_settings(), key)
    assert result.success, failure_message(result)

    frames = sorted(prediction_rows("frames"), key=lambda r: r["frame_idx"])  # 150 frames at 15 fps, at most 5 fps: every third
    assert [f["frame_idx"] for f in frames] == [3 * i for i in range(50)]
    assert [f["time_offset_s"] for f in frames] == [pytest.approx(3 * i / 15) for i in range(50)]
    assert {f["backend"] for f in frames} == {"batch"} and {f["workflow_version"] for f in frames} == {"acme/count-people@latest"}
    assert {f["outputs"] for f in frames} >= {'{"bright": false, "object_count": 1}'}
    detections = sorted(prediction_rows("detections"), key=lambda r: r["frame_idx"])
    assert [(d["frame_idx"], d["x"], d["width"]) for d in detections[:3]] == [(0, 20.0, 10.0), (3, 23.0, 11.0), (6, 26.0, 12.0)]
    assert detections[10]["class_name"] == "fake-object" and detections[10]["class_id"] == 7
    assert detections[10]["frame_ts"] == frames[10]["frame_ts"]
    for name, schema in TABLES.items():
        [path] = (settings.predictions_dir / name).rglob("*.parquet")
        assert pq.read_schema(path).remove_metadata() == schema, name
    [video] = prediction_rows("videos")
    assert video["frames_expected"] == video["frames_processed"] == 50

    job = metadata(result, "batch_job")
    [created] = batch_api.jobs.values()
    assert (job["job_id"], job["videos_in_job"], job["spend_estimate_frames"]) == (created.job_id, 1, 50)
    assert job["results_batch"] == f"{created.job_id}-export" and job["staging_batch"] == created.definition["jobInput"]["batchId"]
    assert metadata(result, "frame_predictions")["frames_missing"] == 0


def test_the_job_is_started_as_configured_and_the_upload_carries_the_signed_headers(
    batch_api, batch_settings, dropped, run_batch, failure_message
) -> None:
    key = dropped("one_runner.mp4")["one_runner.mp4"]
    configured = batch_settings(batch_machine_type="gpu", batch_workers_per_machine=2, batch_max_runtime_seconds=7200, hosted_fps=10)
    result = run_batch(configured, key)
    assert result.success, failure_message(result)
    [job] = batch_api.jobs.values()
    assert job.definition["computeConfiguration"] == {"type": "compute-configuration-v2", "machineType": "gpu", "workersPerMachine": 2}
    assert job.definition["processingSpecification"]["maxVideoFPS"] == 10
    assert job.definition["processingSpecification"]["workspace"] == "acme"
    assert job.definition["processingSpecification"]["workflowId"] == "count-people"
    assert job.definition["processingTimeoutSeconds"] == 7200
    [put] = [r for r in batch_api.requests if r.endpoint == "upload"]
    assert put.headers["X-Goog-Content-Length-Range"] == "0,21474836480"
    probe = VideoLibrary.from_settings(configured).probe(key)
    [staged] = job.videos
    assert staged.name.startswith(marker_of(probe)) and staged.name.endswith(".mp4")
    assert len(table_rows := [r for r in batch_api.requests if r.endpoint == "create_job"]) == 1
    assert table_rows[0].query["name"] == [f"video-assets {job.definition['jobInput']['batchId']}"]


def test_a_fractional_stride_is_exact_when_the_rows_say_their_frame(batch_api, batch_settings, dropped, run_batch, failure_message, prediction_rows) -> None:
    from fakes.roboflow_batch_api import kept_frames

    batch_api.frame_position = "frame_number"
    key = dropped("two_walkers.mp4")["two_walkers.mp4"]
    result = run_batch(batch_settings(hosted_fps=6), key)  # 15 / 6 = 2.5: InferencePipeline picks 2 or 3 at random
    assert result.success, failure_message(result)
    kept = kept_frames(150, 15.0, 6)
    assert sorted(f["frame_idx"] for f in prediction_rows("frames")) == kept
    assert {3, 2} <= {b - a for a, b in itertools.pairwise(kept)}  # both strides occur


def test_rows_without_frames_and_a_fractional_stride_are_placed_by_estimate_with_a_warning(
    batch_api, batch_settings, dropped, run_batch, failure_message, prediction_rows, instance
) -> None:
    key = dropped("two_walkers.mp4")["two_walkers.mp4"]
    from fakes.roboflow_batch_api import kept_frames

    result = run_batch(batch_settings(hosted_fps=6), key)
    assert result.success, failure_message(result)
    indexes = sorted(f["frame_idx"] for f in prediction_rows("frames"))
    assert len(indexes) == len(kept_frames(150, 15.0, 6)) and indexes[0] == 0 and indexes[-1] < 150
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if "frame positions are estimates" in e.user_message]
    assert warnings


def test_a_rerun_reuses_the_job_and_force_resubmit_pays_again_once(batch_api, batch_settings, dropped, run_batch, failure_message, prediction_rows) -> None:
    key = dropped("two_walkers.mp4")["two_walkers.mp4"]
    assert run_batch(batch_settings(), key).success
    again = run_batch(batch_settings(), key)  # the results are read again, from this machine's copy
    assert again.success, failure_message(again)
    assert (batch_api.count("upload"), batch_api.count("create_job"), batch_api.count("download")) == (1, 1, 1)
    assert len(prediction_rows("frames")) == 50  # replaced, not duplicated

    forced = run_batch(batch_settings(), key, run_config=FORCE)
    assert forced.success, failure_message(forced)
    assert len(batch_api.jobs) == 2 and batch_api.count("upload") == 2  # once for the forced run, not once per step
    assert run_batch(batch_settings(), key).success and len(batch_api.jobs) == 2


def test_the_budget_refuses_a_video_before_anything_is_uploaded(batch_api, batch_settings, dropped, run_batch, failure_message) -> None:
    key = dropped("two_walkers.mp4")["two_walkers.mp4"]
    refused = run_batch(batch_settings(budget_frames=40), key)
    assert not refused.success
    assert "needs 50 frames and 0 of the budget of 40 frames" in failure_message(refused)
    assert batch_api.requests == []
    assert run_batch(batch_settings(budget_frames=50), key).success


def test_the_spend_estimate_is_shown_before_submission(batch_api, batch_settings, dropped, run_batch, failure_message, metadata) -> None:
    key = dropped("two_walkers.mp4")["two_walkers.mp4"]
    result = run_batch(batch_settings(batch_machine_type="gpu"), key)
    assert result.success, failure_message(result)
    observations = [e.event_specific_data.asset_observation for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    [estimate] = [o.metadata for o in observations]
    assert estimate["spend_estimate_frames"].value == 50 and estimate["spend_estimate_credits"].value == pytest.approx(0.0005)
    job = metadata(result, "batch_job")
    assert job["job_spend_estimate_frames"] == 50 and job["frames_submitted_in_ledger"] == 50


def test_a_run_can_switch_a_self_hosted_deployment_to_batch(batch_api, batch_settings, dropped, run_batch, failure_message, metadata, prediction_rows) -> None:
    deployed = batch_settings(kind="self_hosted")
    assert not build_definitions(deployed).resolve_asset_graph().has(dg.AssetKey("batch_job"))
    key = dropped("two_walkers.mp4")["two_walkers.mp4"]
    result = run_batch(deployed, key, steps=("raw_video", "frame_predictions"),
                       run_config={"resources": {"backend": {"config": {"kind": "batch"}}}})
    assert result.success, failure_message(result)
    assert metadata(result, "frame_predictions")["backend"] == "batch" and len(prediction_rows("frames")) == 50
    assert len(batch_api.jobs) == 1


def test_the_batch_graph_and_its_settings_come_from_the_environment(settings, batch_api) -> None:
    env = {
        "VIDEO_ASSETS_HOME": str(settings.home), "VIDEO_ASSETS_BACKEND": "batch", "ROBOFLOW_WORKSPACE": "acme",
        "ROBOFLOW_WORKFLOW": "count-people", "VIDEO_ASSETS_BATCH_MACHINE_TYPE": "gpu", "VIDEO_ASSETS_BATCH_WINDOW": "0",
        "VIDEO_ASSETS_BATCH_MAX_VIDEOS": "20", "VIDEO_ASSETS_BATCH_WORKERS_PER_MACHINE": "4", "VIDEO_ASSETS_BATCH_LEASE": "30",
    }
    from_env = Settings.from_env(env)
    assert from_env.backend.values == {
        "workspace": "acme", "workflow_id": "count-people", "batch_machine_type": "gpu", "batch_window_seconds": 0.0,
        "batch_max_videos": 20, "batch_workers_per_machine": 4, "batch_lease_seconds": 30.0,
    }
    graph = build_definitions(from_env).resolve_asset_graph()
    videos = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "videos"}
    assert videos == {"raw_video", "batch_job", "frame_predictions", "video_preview"}
    assert dg.AssetKey("batch_job") in graph.get(dg.AssetKey("frame_predictions")).parent_keys


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"workflow_id": None}, "ROBOFLOW_WORKSPACE and ROBOFLOW_WORKFLOW"),
        ({"batch_machine_type": "tpu"}, "VIDEO_ASSETS_BATCH_MACHINE_TYPE='tpu' must be one of cpu, gpu"),
    ],
)
def test_a_wrong_configuration_fails_with_what_to_set(overrides, expected, batch_api, batch_settings, dropped, run_batch, failure_message) -> None:
    key = dropped("two_walkers.mp4")["two_walkers.mp4"]
    result = run_batch(batch_settings(**overrides), key)
    assert not result.success and expected in failure_message(result)
    assert batch_api.requests == []
