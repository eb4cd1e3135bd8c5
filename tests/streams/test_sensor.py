"""The camera sensor's decisions: which hours to publish when, and what the cursor keeps."""

from datetime import datetime, timedelta, timezone

from video_assets.streams.sensor import CameraCursor, plan_windows

H18 = datetime(2026, 11, 26, 18, tzinfo=timezone.utc)
H19 = H18 + timedelta(hours=1)
SEGMENT_S, REFRESH_S = 60.0, 300.0


def plan(cursor: CameraCursor, windows: dict, now: datetime, **kwargs):
    return plan_windows(cursor, {"lobby": windows}, now, SEGMENT_S, REFRESH_S, **kwargs)


def test_an_hour_being_recorded_is_published_at_once_then_at_most_every_refresh_interval() -> None:
    now = H19 + timedelta(minutes=10)
    requests, cursor = plan(CameraCursor(), {H19: "3:c"}, now)
    assert [(r.camera, r.start, r.run_key) for r in requests] == [("lobby", H19, "lobby|2026-11-26T19|3:c")]
    assert plan(cursor, {H19: "3:c"}, now + timedelta(minutes=1))[0] == []  # nothing new
    assert plan(cursor, {H19: "4:d"}, now + timedelta(minutes=1))[0] == []  # new, but refreshed 1 min ago
    later, cursor = plan(cursor, {H19: "9:i"}, now + timedelta(minutes=5))
    assert [r.fingerprint for r in later] == ["9:i"]
    assert cursor.settled == {}  # the hour is not over


def test_an_hour_that_is_over_is_published_once_in_its_final_form_then_forgotten() -> None:
    during = H18 + timedelta(minutes=59)
    _, cursor = plan(CameraCursor(), {H18: "59:x"}, during)
    after = H19 + timedelta(seconds=SEGMENT_S + 11)
    requests, cursor = plan(cursor, {H18: "60:y", H19: "1:a"}, after)  # the last segment of 18:00 arrived
    assert [(r.start, r.fingerprint) for r in requests] == [(H18, "60:y"), (H19, "1:a")]
    assert cursor.settled == {"lobby": "2026-11-26T19"}
    assert list(cursor.requested["lobby"]) == ["2026-11-26T19"]  # the cursor stays small
    assert plan(cursor, {H19: "1:a"}, after + timedelta(seconds=5))[0] == []


def test_a_backlog_is_published_in_bounded_batches() -> None:
    windows = {H18 - timedelta(hours=i): f"1:{i}" for i in range(7)}
    now = H19 + timedelta(hours=1)
    first, cursor = plan(CameraCursor(), windows, now, max_requests=4)
    second, cursor = plan(cursor, windows, now, max_requests=4)
    assert len(first) == 4 and len(second) == 3
    assert sorted(r.start for r in first + second) == sorted(windows)
    assert cursor.settled == {"lobby": "2026-11-26T19"}

