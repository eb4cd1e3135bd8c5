"""Predictions Parquet: never removed by default; when asked, a video goes whole (every table), oldest first."""

import dataclasses
from datetime import UTC, datetime

from video_assets.retention.sweep import carry_out, plan_retention
from video_assets.settings import Keep, RetentionSettings


def test_predictions_stay_unless_asked_then_whole_videos_go_by_age(settings, instance, write_video, age, prediction_rows) -> None:
    write_video("old-000000000001", frames=4, detections_on=[1, 2])
    write_video("new-000000000002", frames=3, detections_on=[0])
    for table in ("videos", "frames", "detections"):
        age(settings.predictions_dir / table / "video_id=old-000000000001" / "part-0.parquet", 400)
    now = datetime.now(UTC)
    assert plan_retention(settings, instance, now).by_kind("predictions") == []  # the default: forever

    forever = Keep()
    retention = RetentionSettings(segments=forever, logs=forever, runs=forever, compute_logs=forever, predictions=Keep(days=365))
    asked = dataclasses.replace(settings, retention=retention)
    done = carry_out(plan_retention(asked, instance, now), asked, print)
    assert [a.what for a in done.actions] == ["predictions/*/video_id=old-000000000001"]
    for table in ("videos", "frames", "detections"):
        assert {r["video_id"] for r in prediction_rows(table)} == {"new-000000000002"}
    assert not list(settings.predictions_dir.rglob(".*"))  # no hidden leftovers
