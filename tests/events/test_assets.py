"""Vision Events sink against a local server that implements the documented contract."""

import json
import logging
import os
import shutil
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import dagster as dg
import pyarrow.dataset as ds
import pytest

from conftest import API_KEY
from fakes.vision_events_api import Fault, FakeVisionEvents
from video_assets.definitions import build_definitions
from video_assets.events.sink import VisionEvents, vision_events_from_env
from video_assets.events.summaries import event_id
from video_assets.ingest.files import scan_drop_folders
from video_assets.ingest.library import VideoLibrary

LOG = logging.getLogger("test")
USE_CASE = "lobby-traffic"


@pytest.fixture
def events_api():
    api = FakeVisionEvents(api_key=API_KEY).start()
    yield api
    api.stop()


def sink(api: FakeVisionEvents, **overrides) -> VisionEvents:
    return VisionEvents(use_case=USE_CASE, api_url=api.url, api_key=API_KEY, backoff_seconds=0.05, **overrides)


@pytest.fixture
def recent_video(settings, samples_dir) -> str:
    """two_walkers recorded a few minutes ago (Vision Events only takes the last year)."""
    target = settings.inbox / "two_walkers.mp4"
    shutil.copy2(samples_dir / "two_walkers.mp4", target)
    recent = time.time() - 300
    os.utime(target, (recent, recent))
    [dropped] = scan_drop_folders(settings.drop_folders)
    return VideoLibrary.from_settings(settings).key_for(dropped)


def run(settings, instance, key, events_sink) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings, events_sink=events_sink)
    instance.add_dynamic_partitions("videos", [key])
    names = ("raw_video", "frame_predictions", "vision_events")
    return dg.materialize([defs.get_assets_def(n) for n in names], partition_key=key, instance=instance,
                          resources=defs.resources, raise_on_error=False)


def delivered(result) -> dg.AssetCheckEvaluation:
    [check] = result.get_asset_check_evaluations()
    return check


def test_per_minute_summaries_arrive_with_deterministic_ids(settings, instance, recent_video, events_api) -> None:
    result = run(settings, instance, recent_video, sink(events_api))
    assert result.success and delivered(result).passed
    detections = ds.dataset(settings.predictions_dir / "detections", format="parquet").to_table().to_pylist()
    expected = defaultdict(lambda: defaultdict(int))
    for d in detections:
        expected[d["frame_ts"].replace(second=0, microsecond=0)][d["class_name"]] += 1
    workflow = detections[0]["workflow_version"]
    assert set(events_api.events) == {event_id(recent_video, workflow, minute) for minute in expected}
    for minute, counts in expected.items():
        event = events_api.events[event_id(recent_video, workflow, minute)]
        assert event["useCaseId"] == USE_CASE and event["eventType"] == "custom"
        assert event["timestamp"] == minute.isoformat().replace("+00:00", "Z")
        assert event["customMetadata"]["source"] == "inbox" and event["customMetadata"]["video_id"] == recent_video
        assert event["customMetadata"]["count motion"] == counts["motion"] == event["eventData"]["value"]
    crossings = sum(v for e in events_api.events.values() for k, v in e["customMetadata"].items() if k.startswith("crossings "))
    assert crossings == 2  # the two walkers each cross the line once
    assert all(r["headers"]["Authorization"] == f"Bearer {API_KEY}" for r in events_api.requests)

    before = dict(events_api.events)
    assert run(settings, instance, recent_video, sink(events_api)).success
    assert events_api.events.keys() == before.keys()  # the re-run overwrote the same events
    sent_ids = [json.loads(r["body"])["events"][0]["eventId"] for r in events_api.requests]
    assert sent_ids[0] == sent_ids[-1]


def test_429_and_5xx_are_retried(settings, instance, recent_video, events_api) -> None:
    events_api.faults.extend([Fault(429, retry_after="1"), Fault(503), Fault(500)])
    result = run(settings, instance, recent_video, sink(events_api))
    assert result.success and delivered(result).passed
    assert len(events_api.requests) == 4 and events_api.events


def test_delivery_failure_never_fails_the_predictions(settings, instance, recent_video, events_api) -> None:
    events_api.faults.extend([Fault(500)] * 10)
    result = run(settings, instance, recent_video, sink(events_api, attempts=3))
    assert result.success  # the run, and frame_predictions in it, succeeded
    assert result.asset_materializations_for_node("frame_predictions")
    check = delivered(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["failed_batches"].value == 1 and "HTTP 500" in check.metadata["problems"].value
    assert len(events_api.requests) == 3 and not events_api.events


def test_invalid_events_are_rejected_before_sending_and_server_errors_reported(events_api) -> None:
    now = datetime.now(timezone.utc)
    good = {"eventId": "a", "eventType": "custom", "useCaseId": USE_CASE, "timestamp": now.isoformat()}
    too_old = {**good, "eventId": "b", "timestamp": (now - timedelta(days=400)).isoformat()}
    too_many = {**good, "eventId": "c", "customMetadata": {f"k{i}": i for i in range(101)}}
    bad_key = {**good, "eventId": "d", "customMetadata": {"no/slash": 1}, "eventType": "oops"}
    delivery = sink(events_api).send([good, too_old, too_many, bad_key], LOG)
    assert delivery.sent == ["a"] and set(events_api.events) == {"a"}
    assert [r.split(":")[0] for r in delivery.rejected] == ["b", "c", "d"]
    assert "between one year ago and tomorrow" in delivery.rejected[0]
    assert "101 keys" in delivery.rejected[1] and "eventType 'oops'" in delivery.rejected[2]

    events_api.faults.append(Fault(400))  # the server refuses: reported, not retried
    refused = sink(events_api).send([good], LOG)
    assert not refused.ok and "HTTP 400" in refused.failed[0] and len(events_api.requests) == 2
    unauthorized = VisionEvents(use_case=USE_CASE, api_url=events_api.url, api_key="wrong").send([good], LOG)
    assert "HTTP 401" in unauthorized.failed[0]


def test_batches_hold_at_most_100_events(events_api) -> None:
    now = datetime.now(timezone.utc).isoformat()
    events = [{"eventId": f"e{i}", "eventType": "custom", "useCaseId": USE_CASE, "timestamp": now} for i in range(250)]
    delivery = sink(events_api).send(events, LOG)
    assert delivery.ok and len(delivery.sent) == 250
    assert [len(json.loads(r["body"])["events"]) for r in events_api.requests] == [100, 100, 50]


def test_the_sink_is_off_unless_configured(settings) -> None:
    assert vision_events_from_env({}) is None
    assert "vision_events" not in {a.key.to_user_string() for a in build_definitions(settings).assets}
    on = vision_events_from_env({"VIDEO_ASSETS_VISION_EVENTS_USE_CASE": "x", "ROBOFLOW_API_URL": "http://h"})
    assert on.use_case == "x" and on.api_url == "http://h" and on.api_key is None


def test_a_published_camera_hour_sends_its_summaries(settings, instance, events_api) -> None:
    from test_sql_checks import write_video

    from video_assets.streams.assets import camera_names, camera_partition_key
    from video_assets.streams.store import camera_video_id, window_start

    hour = window_start(datetime.now(timezone.utc) - timedelta(hours=1))
    video_id = camera_video_id("lobby", hour)
    write_video(settings, video_id, frames=5, detections_on=[0, 1, 1], ts=hour + timedelta(minutes=7))
    defs = build_definitions(settings, events_sink=sink(events_api))
    instance.add_dynamic_partitions(camera_names.name, ["lobby"])
    result = dg.materialize([defs.get_assets_def("camera_vision_events")], partition_key=camera_partition_key("lobby", hour),
                            instance=instance, resources=defs.resources)
    assert result.success and delivered(result).passed
    [event] = events_api.events.values()
    assert event["customMetadata"]["video_id"] == video_id and event["customMetadata"]["detections"] == 3
    assert event["timestamp"] == (hour + timedelta(minutes=7)).isoformat().replace("+00:00", "Z")
