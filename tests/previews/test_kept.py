"""PictureKeeper on its own: what it keeps of a stream of frames, and how much of it."""

from __future__ import annotations

import cv2
import numpy as np

from video_assets.backends.base import Detection
from video_assets.previews.kept import PictureKeeper
from video_assets.previews.render import SNAPSHOT_MAX_SIDE


def _box(tracker: int, x: float, y: float, size: float, confidence: float = 0.5) -> Detection:
    return Detection("motion", 0, confidence, x, y, size, size, tracker)


def test_the_sheet_frames_and_each_tracks_best_sighting_are_kept() -> None:
    keeper = PictureKeeper(sheet_frames=[0, 2], max_snapshots=10)
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 255, (360, 640, 3), dtype=np.uint8) for _ in range(3)]
    keeper.add(0, [_box(1, 100, 100, 40), _box(2, 300, 200, 30)], frames[0])
    keeper.add(1, [_box(1, 120, 100, 60)], frames[1])  # larger: the new best of track 1
    keeper.add(2, [_box(1, 140, 100, 50), _box(2, 310, 200, 30, confidence=0.9)], frames[2])
    rows = keeper.rows()
    assert [(r["frame_idx"], r["tracker_id"]) for r in rows] == [(0, None), (2, None), (1, 1), (2, 2)]
    thumbnail = cv2.imdecode(np.frombuffer(rows[0]["jpeg"], np.uint8), cv2.IMREAD_COLOR)
    assert thumbnail.shape == (270, 480, 3)
    snapshot = cv2.imdecode(np.frombuffer(rows[2]["jpeg"], np.uint8), cv2.IMREAD_COLOR)
    assert snapshot.shape[:2] == (90, 90)  # the 60 px box and a 15 px margin on each side, from frame 1
    expected = frames[1][55:145, 75:165]
    assert np.abs(snapshot.astype(int) - expected).mean() < np.abs(snapshot.astype(int) - frames[0][55:145, 75:165]).mean()


def test_memory_stays_bounded_however_many_tracks_and_large_boxes_go_by() -> None:
    keeper = PictureKeeper(sheet_frames=[], max_snapshots=3)  # crops of at most 12 tracks
    frame = np.full((720, 1280, 3), 128, np.uint8)
    for frame_idx in range(200):
        # a long-lived track the size of the frame, and a new short-lived one every frame
        keeper.add(frame_idx, [_box(1, 640, 360, 700), _box(100 + frame_idx, 50, 50, 20)], frame)
        assert len(keeper.crops) <= 12
    assert max(keeper.crops[1][2].shape[:2]) <= SNAPSHOT_MAX_SIDE
    rows = keeper.rows()
    assert rows[0]["tracker_id"] == 1 and len(rows) == 3  # the longest-seen track is never let go
