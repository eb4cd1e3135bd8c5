"""The VisionEvents resource on its own: events checked against the documented limits, batches of 100, errors reported."""

import json
import logging
from datetime import datetime, timedelta, timezone

from fakes.vision_events_api import Fault
from video_assets.events.sink import VisionEvents

LOG = logging.getLogger("test")


def test_invalid_events_are_rejected_before_sending_and_server_errors_reported(events_api, vision_events, use_case) -> None:
    now = datetime.now(timezone.utc)
    good = {"eventId": "a", "eventType": "custom", "useCaseId": use_case, "timestamp": now.isoformat()}
    too_old = {**good, "eventId": "b", "timestamp": (now - timedelta(days=400)).isoformat()}
    too_many = {**good, "eventId": "c", "customMetadata": {f"k{i}": i for i in range(101)}}
    bad_key = {**good, "eventId": "d", "customMetadata": {"no/slash": 1}, "eventType": "oops"}
    delivery = vision_events().send([good, too_old, too_many, bad_key], LOG)
    assert delivery.sent == ["a"] and set(events_api.events) == {"a"}
    assert [r.split(":")[0] for r in delivery.rejected] == ["b", "c", "d"]
    assert "between one year ago and tomorrow" in delivery.rejected[0]
    assert "101 keys" in delivery.rejected[1] and "eventType 'oops'" in delivery.rejected[2]

    events_api.faults.append(Fault(400))  # the server refuses: reported, not retried
    refused = vision_events().send([good], LOG)
    assert not refused.ok and "HTTP 400" in refused.failed[0] and len(events_api.requests) == 2
    unauthorized = VisionEvents(use_case=use_case, api_url=events_api.url, api_key="wrong").send([good], LOG)
    assert "HTTP 401" in unauthorized.failed[0]


def test_batches_hold_at_most_100_events(events_api, vision_events, use_case) -> None:
    now = datetime.now(timezone.utc).isoformat()
    events = [{"eventId": f"e{i}", "eventType": "custom", "useCaseId": use_case, "timestamp": now} for i in range(250)]
    delivery = vision_events().send(events, LOG)
    assert delivery.ok and len(delivery.sent) == 250
    assert [len(json.loads(r["body"])["events"]) for r in events_api.requests] == [100, 100, 50]
