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


def test_in_an_object_store_whole_videos_go_oldest_first_and_unfinished_ones_stay(tmp_path, object_store_server, s3_credentials) -> None:
    """Many machines: the tables are in the object store, listed once and removed there, `videos` first."""
    import time
    import uuid

    from servers.cluster_services import BUCKET

    from video_assets.retention.policy import choose
    from video_assets.retention.predictions import prediction_actions
    from video_assets.storage import store_at

    store = store_at(f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}/predictions", object_store_server.endpoint, "us-east-1")
    for video, tables in (("old-000000000001", ("detections", "frames", "videos")),
                          ("new-000000000002", ("detections", "frames", "videos")),
                          ("writing-000000000003", ("detections",))):  # its `videos` file is not there yet
        for table in tables:
            store.put_bytes(f"{table}/video_id={video}/part-0.parquet", b"x" * 100)
        time.sleep(1.1)  # S3 times have whole seconds: the old video is older
    actions = prediction_actions(store, tmp_path)
    assert [a.what.rsplit("/", 1)[-1] for a in actions] == ["video_id=new-000000000002", "video_id=old-000000000001"]
    assert all(a.what.startswith(f"s3://{BUCKET}/") and a.bytes == 300 for a in actions)
    [chosen] = choose(actions, Keep(bytes=300), now=time.time())  # room for one video: the oldest goes
    chosen.carry_out()
    assert sorted(store.files()) == [
        "detections/video_id=new-000000000002/part-0.parquet",
        "detections/video_id=writing-000000000003/part-0.parquet",
        "frames/video_id=new-000000000002/part-0.parquet",
        "videos/video_id=new-000000000002/part-0.parquet",
    ]
