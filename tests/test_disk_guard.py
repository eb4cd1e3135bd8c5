"""The disk guard's reading of a real filesystem, and the writers' promise when one fills: nothing half-written."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from video_assets.backends.base import BackendIdentity, FramePrediction
from video_assets.disk_guard import disk_space, lowest_space
from video_assets.ingest.probe import MediaInfo, VideoProbe
from video_assets.predictions.writer import PredictionWriter
from video_assets.settings import DiskGuard
from video_assets.storage import LocalStore, read_json, write_json
from video_assets.streams.segments import SegmentRecorder
from video_assets.streams.store import CameraStore

MB = 2**20
T = datetime(2026, 11, 26, 18, 0, 5, tzinfo=UTC)
IDENTITY = BackendIdentity("self_hosted", "inline:test")


def noise(seed: int, size: int = 3000) -> str:
    """Text zstd cannot shrink much (fixed seed): rows that really take room on disk."""
    return random.Random(seed).randbytes(size).hex()


def hidden_leftovers(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*"))


def test_below_the_threshold_is_low_and_space_coming_back_clears_it(small_disk, tmp_path) -> None:
    guard = DiskGuard(min_free_bytes=8 * MB)
    assert not disk_space(small_disk.path / "streams" / "not-yet-created", guard).low  # its nearest existing folder
    small_disk.fill(leave=4 * MB)
    space = disk_space(small_disk.path, guard)
    assert space.low and space.free_bytes <= 4 * MB and space.threshold_bytes == 8 * MB
    assert "below VIDEO_ASSETS_MIN_FREE=8.0 MB" in space.reason and str(small_disk.path) in space.reason
    assert disk_space(small_disk.path, DiskGuard(min_free_percent=50)).low  # 4 of 16 MB free is below 50 %
    assert lowest_space([tmp_path, small_disk.path], guard).path == small_disk.path  # the fuller filesystem
    small_disk.clear()
    assert not disk_space(small_disk.path, guard).low


def test_a_segment_that_does_not_fit_leaves_nothing_and_is_committed_once_space_returns(small_disk, tmp_path) -> None:
    store = CameraStore(root=str(small_disk.path / "streams"), config_file=str(tmp_path / "cameras.toml"))
    recorder = SegmentRecorder(store, "lobby", IDENTITY, 60)
    for i in range(400):  # about 2.4 MB of noise; 64 KB left
        recorder.add_frame(T + timedelta(seconds=i / 10), (), {"note": noise(i)})
    small_disk.fill(leave=64 * 1024)
    with pytest.raises(OSError):
        recorder.commit_due(force=True)
    assert store.segments("lobby", T) == [] and hidden_leftovers(store.camera_dir("lobby")) == []
    small_disk.clear()
    recorder.commit_due()  # kept in memory, written now
    [segment] = store.segments("lobby", T)
    assert store.segment_table(segment, "frames").num_rows == 400


def test_a_status_file_that_cannot_be_replaced_keeps_the_old_one_and_no_temporary_file(small_disk) -> None:
    path = small_disk.path / "lobby" / "status.json"
    write_json(path, {"state": "streaming"})
    small_disk.fill()
    with pytest.raises(OSError):
        write_json(path, {"state": "streaming", "padding": "p" * 200_000})
    assert read_json(path) == {"state": "streaming"} and hidden_leftovers(small_disk.path) == []


def test_a_video_whose_predictions_do_not_fit_publishes_nothing(small_disk) -> None:
    media = MediaInfo(duration_s=60.0, fps=10.0, frame_count=600, width=64, height=64, codec="h264", recorded_at=T)
    probe = VideoProbe("clip.mp4-0123456789ab", "inbox", "clip.mp4", "/nowhere/clip.mp4", 1, "0" * 64, media)
    root = small_disk.path / "predictions"
    small_disk.fill(leave=256 * 1024)
    with pytest.raises(OSError), PredictionWriter(LocalStore(root), probe, IDENTITY, flush_every=50) as writer:
        for i in range(600):
            writer.add_frame(FramePrediction(i, i / 10, (), {"note": noise(i)}))
        writer.commit()
    assert not list(root.rglob("*.parquet")) and hidden_leftovers(root) == []
