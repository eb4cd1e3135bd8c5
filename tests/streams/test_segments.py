"""Rolling segments: real Parquet in a real folder, committed whole, numbered across segments and restarts."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from video_assets.backends.base import BackendIdentity, Detection
from video_assets.predictions.schema import CAMERA_TABLES, TABLES
from video_assets.streams.segments import CommittedSegment, Gap, SegmentRecorder
from video_assets.streams.store import CameraStore

IDENTITY = BackendIdentity("self_hosted", "inline:test")
T0 = datetime(2026, 11, 26, 18, 59, 50, tzinfo=timezone.utc)
BOX = (Detection("motion", 0, 1.0, 10.0, 20.0, 4.0, 8.0, tracker_id=3),)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> CameraStore:
    return CameraStore(root=str(tmp_path / "streams"), config_file=str(tmp_path / "cameras.toml"))


def recorder(store: CameraStore, clock: Clock, segment_s: float = 60.0) -> SegmentRecorder:
    return SegmentRecorder(store, "lobby", IDENTITY, segment_s, monotonic=clock)


def read(segment: Path, table: str) -> list[dict]:
    return pq.read_table(segment / f"{table}.parquet").to_pylist()


def published(store: CameraStore, committed: CommittedSegment) -> Path:
    """Where a committed segment is in the (local) camera store."""
    [path] = Path(store.root).glob(f"lobby/*/{committed.name}")
    return path


def test_a_segment_holds_final_rows_in_the_prediction_schema(store) -> None:
    clock = Clock()
    rec = recorder(store, clock)
    for i in range(5):
        rec.add_frame(
            T0 + timedelta(seconds=i * 0.5),
            BOX if i % 2 else (),
            {"count_in": i},
            dropped_before=i,
            size=(640, 360),
            source_fps=15.0,
        )
    assert rec.commit_due() == []  # not yet segment_s old
    clock.now = 60.0
    [committed] = rec.commit_due()
    assert (committed.frames, committed.dropped, committed.gaps) == (5, 10, 0)
    hour = datetime(2026, 11, 26, 18, tzinfo=timezone.utc)
    assert store.segments("lobby", hour) == [f"lobby/2026-11-26T18/{committed.name}"]
    segment = published(store, committed)
    for table in ("detections", "frames"):
        assert pq.read_schema(segment / f"{table}.parquet").equals(TABLES[table])
    frames = read(segment, "frames")
    assert [f["frame_idx"] for f in frames] == [0, 1, 2, 3, 4]
    assert [f["frame_ts"] for f in frames] == [T0 + timedelta(seconds=i * 0.5) for i in range(5)]
    assert frames[1]["time_offset_s"] == pytest.approx(59 * 60 + 50.5)
    assert {f["video_id"] for f in frames} == {"lobby@2026-11-26T18"} and frames[0]["source"] == "lobby"
    assert [f["detection_count"] for f in frames] == [0, 1, 0, 1, 0] and frames[4]["outputs"] == '{"count_in": 4}'
    assert [(d["frame_idx"], d["tracker_id"], d["x"]) for d in read(segment, "detections")] == [
        (1, 3, 10.0),
        (3, 3, 10.0),
    ]
    [row] = read(segment, "camera_segments")
    assert (row["frame_idx_start"], row["frames_processed"], row["frames_dropped"]) == (0, 5, 10)
    assert (row["first_frame_ts"], row["last_frame_ts"]) == (T0, T0 + timedelta(seconds=2))
    assert (row["width"], row["height"], row["source_fps"], row["workflow_version"]) == (640, 360, 15.0, "inline:test")


def test_a_new_hour_seals_the_last_one_and_numbering_restarts(store) -> None:
    clock = Clock()
    rec = recorder(store, clock)
    times = [T0 + timedelta(seconds=s) for s in (0, 5, 9.5, 10.5, 11)]  # 18:59:50 .. 19:00:01
    for ts in times:
        rec.add_frame(ts, (), {})
    committed = rec.commit_due()  # the 18:00 segment is sealed by the first 19:00 frame; 19:00 is not due
    assert [c.frames for c in committed] == [3]
    clock.now = 60.0
    [later] = rec.commit_due()
    frames = read(published(store, later), "frames")
    assert [(f["video_id"], f["frame_idx"]) for f in frames] == [("lobby@2026-11-26T19", 0), ("lobby@2026-11-26T19", 1)]
    assert frames[0]["time_offset_s"] == pytest.approx(0.5)


def test_numbering_continues_across_segments_and_worker_restarts(store) -> None:
    clock = Clock()
    first = recorder(store, clock, segment_s=1.0)
    for i in range(3):
        first.add_frame(T0 + timedelta(seconds=i), (), {})
    clock.now = 1.0
    first.commit_due()
    first.add_frame(T0 + timedelta(seconds=3), (), {})
    first.commit_due(force=True)
    restarted = recorder(store, clock)  # a new worker process: the count is read back from disk
    restarted.add_frame(T0 + timedelta(seconds=4), (), {})
    restarted.commit_due(force=True)
    hour = datetime(2026, 11, 26, 18, tzinfo=timezone.utc)
    segments = store.segments("lobby", hour)
    frame_idx = [[f["frame_idx"] for f in store.segment_table(s, "frames").to_pylist()] for s in segments]
    assert frame_idx == [[0, 1, 2], [3], [4]]
    assert store.latest_segment_row("lobby")["last_frame_ts"] == T0 + timedelta(seconds=4)


def test_gaps_land_in_the_hour_they_ended(store) -> None:
    rec = recorder(store, Clock())
    rec.add_frame(T0, (), {})
    rec.add_gap(Gap(T0, T0 + timedelta(seconds=20), "reconnect", 7))
    committed = rec.commit_due(force=True)
    assert [(c.frames, c.gaps) for c in committed] == [(1, 0), (0, 1)]
    [gap] = read(published(store, committed[1]), "camera_gaps")
    assert pq.read_schema(published(store, committed[1]) / "camera_gaps.parquet").equals(CAMERA_TABLES["camera_gaps"])
    assert (gap["video_id"], gap["gap_start"], gap["duration_s"], gap["cause"], gap["reconnect_attempts"]) == (
        "lobby@2026-11-26T19",
        T0,
        20.0,
        "reconnect",
        7,
    )


def test_nothing_recorded_commits_nothing_and_half_written_segments_stay_hidden(store) -> None:
    rec = recorder(store, Clock())
    assert rec.commit_due(force=True) == []
    hour = datetime(2026, 11, 26, 18, tzinfo=timezone.utc)
    abandoned = store.outbox_dir("lobby") / "2026-11-26T18" / ".20261126T185000000000Z-dead00.tmp"
    abandoned.mkdir(parents=True)
    (abandoned / "frames.parquet").write_bytes(b"PAR1 half")
    unfinished = store.camera_dir("lobby") / "2026-11-26T18" / "20261126T185500000000Z-dead01"  # no marker
    unfinished.mkdir(parents=True)
    (unfinished / "frames.parquet").write_bytes(b"PAR1 whole")
    assert store.segments("lobby", hour) == []
    rec.add_frame(T0, (), {})
    [committed] = rec.commit_due(force=True)
    assert store.segments("lobby", hour) == [f"lobby/2026-11-26T18/{committed.name}"]
    assert abandoned.exists()  # too recent to be reclaimed: a worker might still be writing it

