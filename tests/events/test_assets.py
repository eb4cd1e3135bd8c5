"""vision_events and camera_vision_events: real runs whose summaries go to a local Vision Events server."""

import dataclasses
import json
import os
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from fakes.vision_events_api import Fault
from video_assets.definitions import build_definitions
from video_assets.events.sink import VisionEvents
from video_assets.events.summaries import event_id
from video_assets.settings import Settings, VisionEventsSettings
from video_assets.streams.assets import camera_names, camera_partition_key
from video_assets.streams.store import camera_video_id, window_start


@pytest.fixture
def recent_video(settings, drop_sample, register) -> str:
    """two_walkers recorded a few minutes ago (Vision Events only takes the last year)."""
    target = drop_sample("two_walkers.mp4")
    recent = time.time() - 300
    os.utime(target, (recent, recent))
    return register()["two_walkers.mp4"]


@pytest.fixture
def run_events(events_settings, instance):
    """One run of a video's assets up to vision_events; `sink` replaces the resource the settings bind."""

    def run(key: str, sink: VisionEvents | None = None) -> dg.ExecuteInProcessResult:
        defs = build_definitions(events_settings)
        resources = defs.resources if sink is None else {**defs.resources, "events_sink": sink}
        names = ("raw_video", "frame_predictions", "vision_events")
        return dg.materialize([defs.get_assets_def(n) for n in names], partition_key=key, instance=instance,
                              resources=resources, raise_on_error=False)

    return run


def delivered(result) -> dg.AssetCheckEvaluation:
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name != "all_frames_processed"]
    return check


def test_per_minute_summaries_arrive_with_deterministic_ids(
    recent_video, run_events, events_api, prediction_rows, use_case, api_key
) -> None:
    result = run_events(recent_video)  # the sink as the settings bind it: use case, URL, key through EnvVar
    assert result.success and delivered(result).passed
    detections = prediction_rows("detections")
    expected: dict = {f["frame_ts"].replace(second=0, microsecond=0): defaultdict(int) for f in prediction_rows("frames")}
    for d in detections:  # one event per minute with frames, even a minute without detections
        expected[d["frame_ts"].replace(second=0, microsecond=0)][d["class_name"]] += 1
    workflow = detections[0]["workflow_version"]
    assert set(events_api.events) == {event_id(recent_video, workflow, minute) for minute in expected}
    for minute, counts in expected.items():
        event = events_api.events[event_id(recent_video, workflow, minute)]
        assert event["useCaseId"] == use_case and event["eventType"] == "custom"
        assert event["timestamp"] == minute.isoformat().replace("+00:00", "Z")
        assert event["customMetadata"]["source"] == "inbox" and event["customMetadata"]["video_id"] == recent_video
        assert event["customMetadata"].get("count motion", 0) == counts["motion"] == event["eventData"]["value"]
    crossings = sum(v for e in events_api.events.values() for k, v in e["customMetadata"].items() if k.startswith("crossings "))
    assert crossings == 2  # the two walkers each cross the line once
    assert all(r["headers"]["Authorization"] == f"Bearer {api_key}" for r in events_api.requests)

    before = dict(events_api.events)
    assert run_events(recent_video).success
    assert events_api.events.keys() == before.keys()  # the re-run overwrote the same events
    sent_ids = [json.loads(r["body"])["events"][0]["eventId"] for r in events_api.requests]
    assert sent_ids[0] == sent_ids[-1]


def test_429_and_5xx_are_retried(recent_video, run_events, events_api, vision_events) -> None:
    events_api.faults.extend([Fault(429, retry_after="1"), Fault(503), Fault(500)])
    result = run_events(recent_video, vision_events())
    assert result.success and delivered(result).passed
    assert len(events_api.requests) == 4 and events_api.events


def test_delivery_failure_never_fails_the_predictions(recent_video, run_events, events_api, vision_events) -> None:
    events_api.faults.extend([Fault(500)] * 10)
    result = run_events(recent_video, vision_events(attempts=3))
    assert result.success  # the run, and frame_predictions in it, succeeded
    assert result.asset_materializations_for_node("frame_predictions")
    check = delivered(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["failed_batches"].value == 1 and "HTTP 500" in check.metadata["problems"].value
    assert len(events_api.requests) == 3 and not events_api.events


def test_the_sink_is_off_unless_configured(settings) -> None:
    assert Settings.from_env({}).vision_events is None
    assert dg.AssetKey("vision_events") not in build_definitions(settings).resolve_asset_graph().get_all_asset_keys()
    on = Settings.from_env({"VIDEO_ASSETS_VISION_EVENTS_USE_CASE": "x", "ROBOFLOW_API_URL": "http://h"})
    assert on.vision_events == VisionEventsSettings(use_case="x", api_url="http://h")
    sink = build_definitions(dataclasses.replace(on, home=settings.home)).resources["events_sink"]
    assert sink.use_case == "x" and sink.api_url == "http://h" and sink.api_key is None


def test_a_published_camera_hour_sends_its_summaries(events_settings, instance, events_api, write_video) -> None:
    hour = window_start(datetime.now(timezone.utc) - timedelta(hours=1))
    video_id = camera_video_id("lobby", hour)
    write_video(video_id, frames=5, detections_on=[0, 1, 1], ts=hour + timedelta(minutes=7))
    defs = build_definitions(events_settings)
    instance.add_dynamic_partitions(camera_names.name, ["lobby"])
    result = dg.materialize([defs.get_assets_def("camera_vision_events")], partition_key=camera_partition_key("lobby", hour),
                            instance=instance, resources=defs.resources)
    assert result.success and delivered(result).passed
    [event] = events_api.events.values()
    assert event["customMetadata"]["video_id"] == video_id and event["customMetadata"]["detections"] == 3
    assert event["timestamp"] == (hour + timedelta(minutes=7)).isoformat().replace("+00:00", "Z")
