"""The hosted path end to end: real Dagster runs against a local server implementing the video API."""

from __future__ import annotations

import dagster as dg
import pyarrow.parquet as pq
import pytest

from video_assets.backends.hosted.contract import sampled_frames
from video_assets.definitions import build_definitions
from video_assets.failures import is_permanent
from video_assets.predictions.schema import TABLES
from video_assets.settings import API_KEY_ENV, Settings


def metadata(result, asset: str) -> dict:
    [event] = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in event.metadata.items()}


@pytest.mark.parametrize("form", ["models", "workflow"])
def test_both_forms_land_the_same_schema_with_sampled_frames(
    form, settings, fake_api, walkers_key, hosted, run_hosted, prediction_rows, failure_message, sample
) -> None:
    walkers = sample("two_walkers.mp4")
    result = run_hosted(hosted(form), walkers_key)
    assert result.success, failure_message(result)

    sampled = sampled_frames(walkers.frames, walkers.fps, 5)
    assert sampled == 50  # 15 fps sampled at 5 fps: every third frame
    frames = sorted(prediction_rows("frames"), key=lambda r: r["frame_idx"])
    assert [f["frame_idx"] for f in frames] == [3 * i for i in range(sampled)]
    assert [f["time_offset_s"] for f in frames] == [round(3 * i / 15, 4) for i in range(sampled)]
    assert {f["backend"] for f in frames} == {"hosted"}
    expected_version = "model:people-detect/3" if form == "models" else "acme/count-people@latest"
    assert {f["workflow_version"] for f in frames} == {expected_version}

    detections = sorted(prediction_rows("detections"), key=lambda r: r["frame_idx"])
    assert len(detections) == sampled
    tenth = detections[10]
    assert (tenth["frame_idx"], tenth["x"], tenth["y"], tenth["width"], tenth["height"]) == (30, 50.0, 180.0, 20.0, 20.0)
    assert tenth["class_name"] == "fake-object" and tenth["class_id"] == 7 and 0.2 < tenth["confidence"] < 0.6
    assert tenth["frame_ts"].timestamp() == pytest.approx(frames[10]["frame_ts"].timestamp())

    for table, schema in TABLES.items():
        [path] = (settings.predictions_dir / table).rglob("*.parquet")
        assert pq.read_schema(path).remove_metadata() == schema, table
    [video] = prediction_rows("videos")
    assert video["frames_expected"] == video["frames_processed"] == sampled

    job = metadata(result, "inference_job")
    assert job["spend_estimate_frames"] == sampled and job["fps"] == 5
    assert metadata(result, "frame_predictions")["frames_missing"] == 0
    observations = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert observations[0].event_specific_data.asset_observation.metadata["spend_estimate_frames"].value == sampled

    submit = next(r for r in fake_api.requests if r.endpoint == "submit")
    if form == "models":
        assert submit.body["infer_fps"] == 5 and submit.body["models"][0]["model_id"] == "people-detect"
        assert submit.path == "/videoinfer/" and "api_key" in submit.query
    else:
        assert submit.body["fps"] == 5 and submit.body["workspace"] == "acme" and submit.body["workflow"] == "count-people"
        assert submit.body["video_url"].endswith("/two_walkers.mp4")  # the recipe's fileUrl, not the signed URL
    upload = next(r for r in fake_api.requests if r.endpoint == "upload")
    assert upload.headers["Content-Type"] == ("application/octet-stream" if form == "models" else "video/mp4")
    assert fake_api.count("submit") == 1


def test_rerun_and_retry_reuse_the_job_and_force_resubmit_pays_again(
    fake_api, walkers_key, hosted, run_hosted, prediction_rows, failure_message
) -> None:
    backend = hosted()
    assert run_hosted(backend, walkers_key).success
    assert run_hosted(backend, walkers_key).success  # re-run: results fetched again, no new job
    assert fake_api.count("submit") == 1 and fake_api.count("upload") == 1
    assert len(prediction_rows("frames")) == 50  # replaced, not duplicated

    forced = run_hosted(backend, walkers_key, run_config={"resources": {"backend": {"config": {"force_resubmit": True}}}})
    assert forced.success, failure_message(forced)
    assert fake_api.count("submit") == 2  # once for the forced run, not once per step
    assert len(fake_api.jobs) == 2


def test_a_run_can_switch_a_self_hosted_deployment_to_hosted(
    fake_api, walkers_key, hosted, run_hosted, prediction_rows, failure_message
) -> None:
    deployed = hosted(kind="self_hosted")
    assert not build_definitions(deployed).resolve_asset_graph().has(dg.AssetKey("inference_job"))  # the self-hosted graph
    result = run_hosted(
        deployed, walkers_key, steps=("raw_video", "frame_predictions"),
        run_config={"resources": {"backend": {"config": {"kind": "hosted"}}}},
    )
    assert result.success, failure_message(result)
    assert metadata(result, "frame_predictions")["backend"] == "hosted"
    assert fake_api.count("upload") == 1 and fake_api.count("submit") == 1
    assert len(prediction_rows("frames")) == 50


def test_frames_the_service_failed_are_missing_not_empty(
    fake_api, walkers_key, hosted, run_hosted, prediction_rows
) -> None:
    fake_api.null_frames = (0, 7)
    result = run_hosted(hosted(), walkers_key)
    assert result.success
    indexes = {r["frame_idx"] for r in prediction_rows("frames")}
    assert 0 not in indexes and 21 not in indexes and len(indexes) == 48
    assert metadata(result, "frame_predictions")["frames_missing"] == 2


def test_budget_cap_refuses_before_submitting(fake_api, walkers_key, hosted, run_hosted, failure_message) -> None:
    result = run_hosted(hosted(budget_frames=40), walkers_key)
    assert not result.success
    assert "needs 50 frames and 0 of the budget of 40 frames" in failure_message(result)
    assert fake_api.count("submit") == 0
    assert run_hosted(hosted(budget_frames=50), walkers_key).success


def test_the_fps_is_capped_at_the_videos_own(
    fake_api, walkers_key, hosted, run_hosted, prediction_rows, sample
) -> None:
    walkers = sample("two_walkers.mp4")
    result = run_hosted(hosted(hosted_fps=60), walkers_key)
    assert result.success
    submit = next(r for r in fake_api.requests if r.endpoint == "submit")
    assert submit.body["infer_fps"] == 15
    assert len(prediction_rows("frames")) == walkers.frames


def test_the_hosted_graph_is_chosen_by_environment(settings) -> None:
    env = {"VIDEO_ASSETS_HOME": str(settings.home), "VIDEO_ASSETS_BACKEND": "hosted", "ROBOFLOW_MODEL": "people-detect/3"}
    defs = build_definitions(Settings.from_env(env))
    graph = defs.resolve_asset_graph()
    videos = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "videos"}
    assert videos == {"raw_video", "uploaded_video", "inference_job", "frame_predictions", "video_preview"}
    assert dg.AssetKey("inference_job") in graph.get(dg.AssetKey("frame_predictions")).parent_keys
    assert dg.AssetKey("uploaded_video") in graph.get(dg.AssetKey("inference_job")).parent_keys


def test_a_missing_target_fails_with_what_to_set(fake_api, walkers_key, hosted, run_hosted, failure_message) -> None:
    backend = hosted(model=None)
    result = run_hosted(backend, walkers_key)
    assert not result.success
    assert "ROBOFLOW_WORKSPACE and ROBOFLOW_WORKFLOW" in failure_message(result)
    assert fake_api.requests == []


def test_without_an_api_key_a_run_fails_permanently_before_any_request(
    fake_api, walkers_key, hosted, run_hosted, failure_message, ledger, monkeypatch
) -> None:
    """The code location loads without a key (its identity needs none); the first step that calls the API fails."""
    monkeypatch.delenv(API_KEY_ENV)
    result = run_hosted(hosted(form="workflow", api_key_set=False), walkers_key)
    assert not result.success
    assert "needs an API key: set ROBOFLOW_API_KEY" in failure_message(result)
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "uploaded_video"
    assert is_permanent(failure.step_failure_data.user_failure_data.metadata)  # neither the step nor the backfill retries
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert fake_api.requests == [] and ledger.submitted_frames() == 0
