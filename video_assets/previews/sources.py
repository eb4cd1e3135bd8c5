"""Where preview pictures come from: a video file decoded again, or a camera worker's thumbnails and crops."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from video_assets.previews.build import evenly_spread
from video_assets.previews.frames import read_frames
from video_assets.previews.render import snapshot
from video_assets.previews.tracks import Track
from video_assets.streams.segments import SNAPSHOTS, THUMBNAILS


class VideoFileFrames:
    """Decodes the file once more, only at the sheet's frames and the tracks' best frames."""

    def __init__(self, path: Path | str):
        self.path = path

    def sheet_frames(self, processed: Sequence[int]) -> list[int]:
        return evenly_spread(processed)

    def collect(self, sheet: Sequence[int], tracks: Sequence[Track]) -> tuple[dict[int, np.ndarray], dict[int, bytes]]:
        best_on = defaultdict(list)
        for track in tracks:
            best_on[track.best_row["frame_idx"]].append(track)
        pictures, snapshots = {}, {}
        for number, picture in read_frames(self.path, {*sheet, *best_on}):
            if number in sheet:
                pictures[number] = picture
            for track in best_on.get(number, []):
                box = track.best_row
                snapshots[track.tracker_id] = snapshot(picture, box["x"], box["y"], box["width"], box["height"])
        return pictures, snapshots


class CameraThumbnails:
    """A camera hour's pictures, as its worker kept them in the committed segments (streams/segments.py)."""

    def __init__(self, segments: Sequence[Path]):
        self.thumbnails = {int(p.stem): p for seg in segments for p in (seg / THUMBNAILS).glob("*.jpg")}
        self.crops: dict[int, dict[int, Path]] = defaultdict(dict)  # tracker -> frame -> crop
        for seg in segments:
            for path in (seg / SNAPSHOTS).glob("*.jpg"):
                tracker, _, frame = path.stem.partition("-")
                self.crops[int(tracker)][int(frame)] = path

    def sheet_frames(self, processed: Sequence[int]) -> list[int]:
        return evenly_spread(list(self.thumbnails))

    def collect(self, sheet: Sequence[int], tracks: Sequence[Track]) -> tuple[dict[int, np.ndarray], dict[int, bytes]]:
        import cv2

        pictures = {n: picture for n in sheet if (picture := cv2.imread(str(self.thumbnails[n]))) is not None}
        snapshots = {}
        for track in tracks:
            crops = self.crops.get(track.tracker_id, {})
            # the crop of the track's best sighting of the hour, else its best one in some segment
            chosen = crops.get(track.best_row["frame_idx"]) or (crops[max(crops)] if crops else None)
            if chosen is not None:
                snapshots[track.tracker_id] = chosen.read_bytes()
        return pictures, snapshots
