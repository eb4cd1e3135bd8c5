"""The webhook sink against a real receiver on 127.0.0.1 that verifies every signature."""

import json
import logging
import time
from datetime import UTC, datetime

from video_assets.notify.webhook import Notification, Outbox

LOG = logging.getLogger("test.notify")


def outbox(settings, max_age_s: float = 3600.0) -> Outbox:
    return Outbox(settings.state_dir / "notify" / "outbox", max_age_s, LOG)


def note(n: int) -> Notification:
    return Notification(f"video_failed:run-{n}", "video_failed", f"Video clip{n} failed: unreadable", {"run_id": f"run-{n}"})


def test_a_notification_arrives_signed_once_and_leaves_the_outbox(settings, receiver) -> None:
    box = outbox(settings)
    box.put(note(1))
    box.put(note(1))  # queued twice while waiting: sent once
    delivery = box.deliver()
    assert delivery.sent == ["video_failed:run-1"] and box.pending() == []
    [got] = receiver.received
    assert got.signature_ok and (got.event, got.delivery) == ("video_failed", "video_failed:run-1")
    created = datetime.fromisoformat(got.body.pop("created_at"))
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60
    assert got.body == {"id": "video_failed:run-1", "event": "video_failed", "title": "Video clip1 failed: unreadable",
                        "details": {"run_id": "run-1"}}  # fmt: skip
    assert not receiver.verify(json.dumps({"title": "forged"}).encode(), "sha256=" + "0" * 64)  # it does check


def test_server_errors_are_retried_with_backoff_within_the_tick(settings, receiver) -> None:
    receiver.script.extend([500, 503])
    box = outbox(settings)
    box.put(note(1))
    started = time.monotonic()
    assert box.deliver().sent == ["video_failed:run-1"]
    assert time.monotonic() - started >= 0.5  # waited between attempts
    assert [r.delivery for r in receiver.received] == ["video_failed:run-1"] * 3 and all(r.signature_ok for r in receiver.received)


def test_a_receiver_that_is_down_keeps_them_queued_in_order_until_it_is_back(settings, receiver, caplog, secrets) -> None:
    receiver.stop()
    box = outbox(settings)
    box.put(note(1))
    box.put(note(2))
    with caplog.at_level(logging.WARNING):
        started = time.monotonic()
        delivery = box.deliver()
    assert delivery.failed == ["video_failed:run-1"] and delivery.sent == []  # stops at the first failure
    assert time.monotonic() - started < 10  # a dead receiver costs a sensor tick seconds, and never a run
    assert [n.id for n in box.pending()] == ["video_failed:run-1", "video_failed:run-2"]
    assert box.deliver().failed == ["video_failed:run-2"]  # its first try; the first one waits (backoff)
    assert box.deliver().failed == []  # neither is due yet
    assert "not delivered to http://127.0.0.1" in caplog.text
    stored = "".join(p.read_text() for p in box.folder.glob("*.json"))
    for secret in secrets:
        assert secret not in caplog.text and secret not in stored

    receiver.start()  # back, on the same port
    assert box.deliver(now=time.time() + 600).sent == ["video_failed:run-1", "video_failed:run-2"]
    assert [r.delivery for r in receiver.received] == ["video_failed:run-1", "video_failed:run-2"]


def test_what_cannot_be_delivered_within_the_maximum_age_is_dropped_and_logged(settings, receiver, caplog) -> None:
    receiver.stop()
    box = outbox(settings, max_age_s=60)
    box.put(note(1))
    box.deliver()
    with caplog.at_level(logging.ERROR):
        assert box.deliver(now=time.time() + 120).dropped == ["video_failed:run-1"]
    assert box.pending() == [] and "was not delivered within" in caplog.text and "Video clip1 failed" in caplog.text
