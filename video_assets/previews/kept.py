"""Pictures kept while a video's frames go by, so its preview need not decode the video again.

The sink of a run sees every frame the model saw. It keeps a JPEG thumbnail of each frame the contact
sheet will show and, for each track, a crop at its best sighting so far (chosen as the tracks table
chooses it: previews/tracks.py best_key, on the values as stored). A video file's are written with its
predictions as the `pictures` table (predictions/schema.py PICTURES); a camera worker keeps the same
in each segment (streams/segments.py). Decoding a 2-minute 720p video again for its 12 sheet frames
and the snapshots of its tracks took 3-5 s, about 5% of making its predictions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from video_assets.backends.base import Detection
from video_assets.previews.render import crop_with_margin, fit_snapshot, snapshot_jpeg, thumbnail_jpeg
from video_assets.previews.tracks import best_key

KEPT_PER_SNAPSHOT = 4
KeptCrop = tuple[tuple[float, float, int], int, np.ndarray]  # (best_key, frame_idx, crop)


def keep_best_crops(
    crops: dict[int, KeptCrop], frame_idx: int, detections: Iterable[Detection], image: np.ndarray
) -> None:
    """For each tracked box of the frame: its crop, if this is the track's best sighting so far."""
    for det in detections:
        if det.tracker_id is None:
            continue
        key = stored_best_key(det, frame_idx)
        kept = crops.get(det.tracker_id)
        if kept is None or key > kept[0]:
            # at snapshot size already: a box as large as the frame would otherwise hold a whole frame per track
            crops[det.tracker_id] = (
                key,
                frame_idx,
                fit_snapshot(crop_with_margin(image, det.x, det.y, det.width, det.height)),
            )


def stored_best_key(det: Detection, frame_idx: int) -> tuple[float, float, int]:
    """best_key of the box as the detections table stores it (float32), so both pick the same frame."""
    confidence = None if det.confidence is None else float(np.float32(det.confidence))
    return best_key(confidence, float(np.float32(det.width)), float(np.float32(det.height)), frame_idx)


class PictureKeeper:
    """The thumbnails of `sheet_frames` and the best crop of the tracks of one video, as frames arrive.

    Crops are kept for at most KEPT_PER_SNAPSHOT x `max_snapshots` tracks (at most 110 KB each): past
    that, those of the tracks seen on the fewest frames are let go, and if one of them still ends among
    the tracks seen longest, the preview decodes its snapshot from the file.
    """

    def __init__(self, sheet_frames: Iterable[int], max_snapshots: int):
        self.sheet_frames = set(sheet_frames)
        self.max_snapshots = max_snapshots
        self.max_crops = KEPT_PER_SNAPSHOT * max_snapshots
        self.thumbnails: dict[int, bytes] = {}
        self.crops: dict[int, KeptCrop] = {}
        self._frames_seen: dict[int, int] = {}  # tracker -> frames it was on
        self._last_seen: dict[int, int] = {}  # tracker -> the last of them

    def add(self, frame_idx: int, detections: Iterable[Detection], image: np.ndarray) -> None:
        if frame_idx in self.sheet_frames:
            self.thumbnails[frame_idx] = thumbnail_jpeg(image)
        detections = tuple(detections)
        for det in detections:
            if det.tracker_id is not None and self._last_seen.get(det.tracker_id) != frame_idx:
                self._last_seen[det.tracker_id] = frame_idx
                self._frames_seen[det.tracker_id] = self._frames_seen.get(det.tracker_id, 0) + 1
        keep_best_crops(self.crops, frame_idx, detections, image)
        if len(self.crops) > self.max_crops:
            self._let_go_of_the_shortest()

    def _let_go_of_the_shortest(self) -> None:
        shortest_first = sorted(self.crops, key=lambda tracker: (self._frames_seen[tracker], -tracker))
        for tracker in shortest_first[: len(self.crops) - self.max_crops // 2]:
            del self.crops[tracker]

    def rows(self) -> list[dict[str, Any]]:
        """The `pictures` rows: the sheet's thumbnails, then snapshots of the tracks seen longest (as the
        preview ranks them: most frames, then lowest id)."""
        rows = [{"frame_idx": n, "tracker_id": None, "jpeg": jpeg} for n, jpeg in sorted(self.thumbnails.items())]
        ranked = sorted(self.crops, key=lambda tracker: (-self._frames_seen[tracker], tracker))
        for tracker in ranked[: self.max_snapshots]:
            _, frame_idx, crop = self.crops[tracker]
            rows.append({"frame_idx": frame_idx, "tracker_id": tracker, "jpeg": snapshot_jpeg(crop)})
        return rows
