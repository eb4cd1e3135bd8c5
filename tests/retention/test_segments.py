"""Camera segments of published hours: only whole hours that are over and fully published ever go."""

import dataclasses
from datetime import UTC, datetime, timedelta

from video_assets.retention.sweep import carry_out, plan_retention
from video_assets.settings import Keep, RetentionSettings
from video_assets.storage import LocalStore
from video_assets.streams.window import NoSegmentsError, publish_window

NOW = datetime.now(UTC)
HOUR = NOW.replace(minute=0, second=0, microsecond=0)


def only_segments(settings, keep: Keep):
    """Settings whose retention touches segments only (every other kind kept forever)."""
    forever = Keep()
    retention = RetentionSettings(segments=keep, logs=forever, runs=forever, compute_logs=forever, sources=forever)
    return dataclasses.replace(settings, retention=retention)


def test_published_hours_older_than_the_setting_go_and_their_published_rows_stay(
    settings, instance, cameras, record_hour, prediction_rows
) -> None:
    old = HOUR - timedelta(days=3)
    published = record_hour("lobby", old)
    unpublished = record_hour("lobby", old + timedelta(hours=1), publish=False)
    late_segment = record_hour("dock", old)
    record_hour("dock", old, segments=1, publish=False)  # one more segment after the hour was published
    young = record_hour("lobby", HOUR - timedelta(hours=5))
    rows_before = len(prediction_rows("frames"))
    settings = only_segments(settings, Keep(days=2))

    dry = plan_retention(settings, instance, NOW)
    assert [a.what for a in dry.actions] == [f"streams/lobby/{old:%Y-%m-%dT%H}"]
    assert dry.actions[0].bytes > 0 and published.is_dir()  # a plan touches nothing

    done = carry_out(plan_retention(settings, instance, NOW), settings, print)
    assert not done.errors and not published.exists()
    assert unpublished.is_dir() and young.is_dir() and late_segment.is_dir()
    assert len(prediction_rows("frames")) == rows_before == 3 * 10  # three published hours of 10 frames
    assert not list(cameras.camera_dir("lobby").glob(".*"))  # removed whole: no hidden leftovers

    # A later re-run of that hour says what happened instead of failing obscurely.
    try:
        publish_window(cameras, LocalStore(settings.predictions_dir), "lobby", old, None)
    except NoSegmentsError as exc:
        assert "removed by retention (VIDEO_ASSETS_KEEP_SEGMENTS) after the hour was published" in str(exc)
    else:
        raise AssertionError("publishing an hour without segments must fail")


def test_a_byte_budget_never_takes_the_hour_being_recorded_or_an_unpublished_one(settings, instance, record_hour) -> None:
    recording = record_hour("lobby", HOUR)  # published by the sensor's periodic refresh, still being recorded
    earlier = record_hour("lobby", HOUR - timedelta(hours=5))
    unpublished = record_hour("dock", HOUR - timedelta(hours=30), publish=False)
    settings = only_segments(settings, Keep(bytes=1))
    done = carry_out(plan_retention(settings, instance, NOW), settings, print)
    assert [a.what for a in done.actions] == [f"streams/lobby/{HOUR - timedelta(hours=5):%Y-%m-%dT%H}"]
    assert recording.is_dir() and unpublished.is_dir() and not earlier.exists()
