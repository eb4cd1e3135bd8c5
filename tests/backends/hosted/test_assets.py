"""The hosted path end to end: real Dagster runs against a local server implementing the video API."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from conftest import API_KEY, drop_sample, sample
from test_assets import failure_message, register
from video_assets.backends.hosted.contract import sampled_frames
from video_assets.backends.hosted.ledger import JobLedger
from video_assets.backends.resources import LEDGER_FILE, Backend
from video_assets.definitions import build_definitions
from video_assets.predictions.schema import TABLES

HOSTED_STEPS = ("raw_video", "uploaded_video", "inference_job", "frame_predictions")
WALKERS = sample("two_walkers.mp4")


def hosted_config(settings, fake_api, form: str = "models", **overrides: object) -> dict:
    config = {
        "kind": "hosted",
        "api_key": dg.EnvVar("ROBOFLOW_API_KEY"),
        "state_dir": str(settings.state_dir),
        "api_url": fake_api.url,
        "poll_seconds": 0.01,
        "backoff_seconds": 0.01,
        "request_timeout_seconds": 5.0,
    }
    config.update({"model": "people-detect/3"} if form == "models" else {"workspace": "acme", "workflow_id": "count-people"})
    return {**config, **overrides}


def hosted_backend(settings, fake_api, form: str = "models", **overrides: object):
    """Bound as the code location binds it: defaults a run config may override."""
    return Backend.configure_at_launch(**hosted_config(settings, fake_api, form, **overrides))


@pytest.fixture(autouse=True)
def api_key_env(monkeypatch) -> None:
    monkeypatch.setenv("ROBOFLOW_API_KEY", API_KEY)


@pytest.fixture
def walkers_key(settings, instance, samples_dir) -> str:
    drop_sample(settings, samples_dir, "two_walkers.mp4")
    return register(settings, instance)["two_walkers.mp4"]


def run(settings, instance, backend, key, steps=HOSTED_STEPS, run_config=None):
    defs = build_definitions(settings, backend=backend)
    return dg.materialize(
        [defs.get_assets_def(name) for name in steps],
        partition_key=key,
        instance=instance,
        resources=defs.resources,
        run_config=run_config,
        raise_on_error=False,
    )


def rows(settings, table: str) -> list[dict]:
    return ds.dataset(settings.predictions_dir / table, format="parquet").to_table().to_pylist()


def metadata(result, asset: str) -> dict:
    [event] = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in event.metadata.items()}


@pytest.mark.parametrize("form", ["models", "workflow"])
def test_both_forms_land_the_same_schema_with_sampled_frames(form, settings, instance, fake_api, walkers_key) -> None:
    result = run(settings, instance, hosted_backend(settings, fake_api, form), walkers_key)
    assert result.success, failure_message(result)

    sampled = sampled_frames(WALKERS.frames, WALKERS.fps, 5)
    assert sampled == 50  # 15 fps sampled at 5 fps: every third frame
    frames = sorted(rows(settings, "frames"), key=lambda r: r["frame_idx"])
    assert [f["frame_idx"] for f in frames] == [3 * i for i in range(sampled)]
    assert [f["time_offset_s"] for f in frames] == [round(3 * i / 15, 4) for i in range(sampled)]
    assert {f["backend"] for f in frames} == {"hosted"}
    expected_version = "model:people-detect/3" if form == "models" else "acme/count-people@latest"
    assert {f["workflow_version"] for f in frames} == {expected_version}

    detections = sorted(rows(settings, "detections"), key=lambda r: r["frame_idx"])
    assert len(detections) == sampled
    tenth = detections[10]
    assert (tenth["frame_idx"], tenth["x"], tenth["y"], tenth["width"], tenth["height"]) == (30, 50.0, 180.0, 20.0, 20.0)
    assert tenth["class_name"] == "fake-object" and tenth["class_id"] == 7 and 0.2 < tenth["confidence"] < 0.6
    assert tenth["frame_ts"].timestamp() == pytest.approx(frames[10]["frame_ts"].timestamp())

    for table, schema in TABLES.items():
        [path] = (settings.predictions_dir / table).rglob("*.parquet")
        assert pq.read_schema(path).remove_metadata() == schema, table
    [video] = rows(settings, "videos")
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


def test_rerun_and_retry_reuse_the_job_and_force_resubmit_pays_again(settings, instance, fake_api, walkers_key) -> None:
    backend = hosted_backend(settings, fake_api)
    assert run(settings, instance, backend, walkers_key).success
    assert run(settings, instance, backend, walkers_key).success  # re-run: results fetched again, no new job
    assert fake_api.count("submit") == 1 and fake_api.count("upload") == 1
    assert len(rows(settings, "frames")) == 50  # replaced, not duplicated

    forced = run(
        settings, instance, backend, walkers_key,
        run_config={"resources": {"backend": {"config": {"force_resubmit": True}}}},
    )
    assert forced.success, failure_message(forced)
    assert fake_api.count("submit") == 2  # once for the forced run, not once per step
    assert len(fake_api.jobs) == 2


def test_a_run_can_switch_a_self_hosted_deployment_to_hosted(settings, instance, fake_api, walkers_key) -> None:
    deployed = hosted_backend(settings, fake_api, kind="self_hosted")
    defs = build_definitions(settings, backend=deployed)
    assert not defs.resolve_asset_graph().has(dg.AssetKey("inference_job"))  # the self-hosted graph
    result = run(
        settings, instance, deployed, walkers_key, steps=("raw_video", "frame_predictions"),
        run_config={"resources": {"backend": {"config": {"kind": "hosted"}}}},
    )
    assert result.success, failure_message(result)
    assert metadata(result, "frame_predictions")["backend"] == "hosted"
    assert fake_api.count("upload") == 1 and fake_api.count("submit") == 1
    assert len(rows(settings, "frames")) == 50


def test_frames_the_service_failed_are_missing_not_empty(settings, instance, fake_api, walkers_key) -> None:
    fake_api.null_frames = (0, 7)
    result = run(settings, instance, hosted_backend(settings, fake_api), walkers_key)
    assert result.success
    indexes = {r["frame_idx"] for r in rows(settings, "frames")}
    assert 0 not in indexes and 21 not in indexes and len(indexes) == 48
    assert metadata(result, "frame_predictions")["frames_missing"] == 2


def test_budget_cap_refuses_before_submitting(settings, instance, fake_api, walkers_key) -> None:
    result = run(settings, instance, hosted_backend(settings, fake_api, budget_frames=40), walkers_key)
    assert not result.success
    assert "needs 50 frames and 0 of the budget of 40 frames" in failure_message(result)
    assert fake_api.count("submit") == 0
    assert run(settings, instance, hosted_backend(settings, fake_api, budget_frames=50), walkers_key).success


def test_the_fps_is_capped_at_the_videos_own(settings, instance, fake_api, walkers_key) -> None:
    result = run(settings, instance, hosted_backend(settings, fake_api, hosted_fps=60), walkers_key)
    assert result.success
    submit = next(r for r in fake_api.requests if r.endpoint == "submit")
    assert submit.body["infer_fps"] == 15
    assert len(rows(settings, "frames")) == WALKERS.frames


def test_the_hosted_graph_is_chosen_by_environment(settings, monkeypatch) -> None:
    monkeypatch.setenv("VIDEO_ASSETS_BACKEND", "hosted")
    monkeypatch.setenv("ROBOFLOW_MODEL", "people-detect/3")
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    videos = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "videos"}
    assert videos == {"raw_video", "uploaded_video", "inference_job", "frame_predictions"}
    assert dg.AssetKey("inference_job") in graph.get(dg.AssetKey("frame_predictions")).parent_keys
    assert dg.AssetKey("uploaded_video") in graph.get(dg.AssetKey("inference_job")).parent_keys


def test_a_missing_target_fails_with_what_to_set(settings, instance, fake_api, walkers_key) -> None:
    backend = hosted_backend(settings, fake_api, model=None)
    result = run(settings, instance, backend, walkers_key)
    assert not result.success
    assert "ROBOFLOW_WORKSPACE and ROBOFLOW_WORKFLOW" in failure_message(result)
    assert fake_api.requests == []


def ledger(settings) -> JobLedger:
    return JobLedger(Path(settings.state_dir) / LEDGER_FILE)


def test_video_assets_process_runs_the_hosted_steps_from_the_environment(tmp_path, samples_dir, fake_api) -> None:
    """The CLI's sensor-driven runs (separate run processes) pick the hosted backend and its settings from the environment."""
    import os
    import shutil
    import subprocess
    import sys

    home = tmp_path / "home"
    (home / "inbox").mkdir(parents=True)
    shutil.copy2(samples_dir / "two_walkers.mp4", home / "inbox" / "two_walkers.mp4")
    env = {
        **os.environ,
        "VIDEO_ASSETS_HOME": str(home),
        "VIDEO_ASSETS_SENSOR_INTERVAL": "1",
        "VIDEO_ASSETS_BACKEND": "hosted",
        "ROBOFLOW_API_URL": fake_api.url,
        "ROBOFLOW_WORKSPACE": "acme",
        "ROBOFLOW_WORKFLOW": "count-people",
        "VIDEO_ASSETS_POLL_SECONDS": "0.05",
    }
    cli = str(Path(sys.executable).with_name("video-assets"))
    done = subprocess.run([cli, "process"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(l for l in done.stdout.splitlines() if l.startswith("inbox/two_walkers.mp4"))
    assert " success " in line and " 50/50 " in line
    assert fake_api.count("submit") == 1 and fake_api.jobs[next(iter(fake_api.jobs))].form == "workflow"
    leaks = [p for p in home.rglob("*") if p.is_file() and API_KEY.encode() in p.read_bytes()]
    assert leaks == [] and API_KEY not in done.stdout + done.stderr
