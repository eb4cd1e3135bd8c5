"""The Parquet writer: complete tables appear at once, never partially."""

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from video_assets.backends.base import BackendIdentity, Detection, FramePrediction
from video_assets.ingest.probe import MediaInfo, VideoProbe
from video_assets.predictions.schema import TABLES
from video_assets.predictions.store import PredictionStore
from video_assets.predictions.writer import NoFramesError, PredictionWriter
from video_assets.storage import LocalStore

IDENTITY = BackendIdentity("self_hosted", "inline:test")
START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def probe(frames: int = 300) -> VideoProbe:
    media = MediaInfo(frames / 10, 10.0, frames, 640, 360, "h264", START)
    return VideoProbe("clip.mp4-0123456789ab", "inbox", "clip.mp4", "/in/clip.mp4", 1234, "0" * 64, media)


def frame(i: int, boxes: int = 1) -> FramePrediction:
    detections = tuple(Detection("person", 0, 0.9, 10.0 + i, 20.0, 4.0, 8.0, tracker_id=7) for _ in range(boxes))
    return FramePrediction(i, i / 10, detections, {"count_in": i // 100})


def visible_parquet(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def test_committed_tables_hold_every_frame(tmp_path: Path) -> None:
    with PredictionWriter(LocalStore(tmp_path), probe(), IDENTITY, flush_every=64) as writer:
        for i in range(300):
            writer.add_frame(frame(i, boxes=0 if i % 3 == 0 else 2))
        summary = writer.commit()
    assert (summary.frames_processed, summary.frames_missing, summary.detections, summary.tracks) == (300, 0, 400, 1)
    frames = pq.read_table(summary.files["frames"])
    detections = pq.read_table(summary.files["detections"])
    assert frames.schema.equals(TABLES["frames"]) and detections.schema.equals(TABLES["detections"])
    assert frames.column("frame_idx").to_pylist() == list(range(300))
    assert sum(frames.column("detection_count").to_pylist()) == detections.num_rows == 400
    row = detections.slice(0, 1).to_pylist()[0]
    assert row["frame_idx"] == 1 and row["frame_ts"] == datetime(2026, 1, 2, 3, 4, 5, 100000, tzinfo=timezone.utc)
    assert (row["x"], row["y"], row["width"], row["height"], row["tracker_id"]) == (11.0, 20.0, 4.0, 8.0, 7)
    assert frames.slice(299, 1).to_pylist()[0]["outputs"] == '{"count_in": 2}'
    assert pq.read_table(summary.files["videos"]).to_pylist()[0]["frames_processed"] == 300


def test_each_frame_counts_its_boxes_per_class_and_lists_its_tracks(tmp_path: Path) -> None:
    boxes = [Detection("person", 0, 0.9, 1.0, 2.0, 3.0, 4.0, tracker_id=9), Detection("car", 2, 0.8, 1.0, 2.0, 3.0, 4.0),
             Detection("person", 0, 0.7, 1.0, 2.0, 3.0, 4.0, tracker_id=4), Detection("person", 0, 0.6, 1.0, 2.0, 3.0, 4.0,
                                                                                      tracker_id=9)]
    with PredictionWriter(LocalStore(tmp_path), probe(), IDENTITY) as writer:
        writer.add_frame(FramePrediction(0, 0.0, tuple(boxes), {}))
        writer.add_frame(FramePrediction(1, 0.1, (), {}))
        frames = pq.read_table(writer.commit().files["frames"]).to_pylist()
    assert frames[0]["class_counts"] == [{"class_name": "car", "boxes": 1}, {"class_name": "person", "boxes": 3}]
    assert frames[0]["tracker_ids"] == [4, 9]  # distinct, ascending; the untracked car is not listed
    assert (frames[1]["class_counts"], frames[1]["tracker_ids"]) == ([], [])  # counted: nothing, not NULL


def test_an_exception_mid_write_leaves_nothing_visible_and_the_old_version_intact(tmp_path: Path) -> None:
    with PredictionWriter(LocalStore(tmp_path), probe(), IDENTITY) as writer:
        for i in range(10):
            writer.add_frame(frame(i))
        old = writer.commit().files
    with pytest.raises(RuntimeError, match="boom"):
        with PredictionWriter(LocalStore(tmp_path), probe(), IDENTITY, flush_every=16) as writer:
            for i in range(200):
                writer.add_frame(frame(i))
            raise RuntimeError("boom")
    assert visible_parquet(tmp_path) == sorted(Path(f) for f in old.values())
    assert pq.read_table(old["frames"]).num_rows == 10
    assert not list(tmp_path.rglob("*.tmp"))  # the aborted temp files were removed


def test_no_frames_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(NoFramesError, match="/in/clip.mp4"):
        with PredictionWriter(LocalStore(tmp_path), probe(), IDENTITY) as writer:
            writer.commit()
    assert visible_parquet(tmp_path) == []


def test_frames_out_of_order_are_rejected(tmp_path: Path) -> None:
    with PredictionWriter(LocalStore(tmp_path), probe(), IDENTITY) as writer:
        writer.add_frame(frame(5))
        with pytest.raises(ValueError, match="arrived after frame 5"):
            writer.add_frame(frame(5))


def test_a_killed_writer_leaves_no_partial_parquet(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from datetime import datetime, timezone
        from pathlib import Path
        from video_assets.backends.base import BackendIdentity, Detection, FramePrediction
        from video_assets.ingest.probe import MediaInfo, VideoProbe
        from video_assets.predictions.writer import PredictionWriter
        from video_assets.storage import LocalStore
        media = MediaInfo(10000.0, 10.0, 100000, 640, 360, "h264", datetime(2026, 1, 2, tzinfo=timezone.utc))
        video = VideoProbe("clip.mp4-0123456789ab", "inbox", "clip.mp4", "/in/clip.mp4", 1234, "0" * 64, media)
        writer = PredictionWriter(LocalStore(Path({str(tmp_path)!r})), video, BackendIdentity("self_hosted", "inline:test"), flush_every=50)
        for i in range(100000):
            writer.add_frame(FramePrediction(i, i / 10, (Detection("person", 0, 0.9, 10.0, 20.0, 4.0, 8.0, tracker_id=7),)))
            if i == 500:
                print("row groups on disk", flush=True)
                time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "row groups on disk"
        temps = list(tmp_path.rglob("*.tmp"))
        assert temps and all(t.stat().st_size > 0 for t in temps)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert visible_parquet(tmp_path) == []
    store = PredictionStore(root=str(tmp_path))
    assert duckdb.connect().execute(f"select count(*) from {store.relation_sql('frames')}").fetchone() == (0,)
