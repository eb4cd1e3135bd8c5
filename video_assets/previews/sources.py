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
from video_assets.storage import Store
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
    """A camera hour's pictures, as its worker kept them in the committed segments (streams/segments.py),
    read from the camera store."""

    def __init__(self, store: Store, segments: Sequence[str]):
        self.store = store
        self.thumbnails: dict[int, str] = {}  # frame -> key
        self.crops: dict[int, dict[int, str]] = defaultdict(dict)  # tracker -> frame -> key
        for seg in segments:
            for path in self.store.files(seg):
                folder, _, name = path.rpartition("/")
                stem = name.removesuffix(".jpg")
                if folder == THUMBNAILS:
                    self.thumbnails[int(stem)] = f"{seg}/{path}"
                elif folder == SNAPSHOTS:
                    tracker, _, frame = stem.partition("-")
                    self.crops[int(tracker)][int(frame)] = f"{seg}/{path}"

    def sheet_frames(self, processed: Sequence[int]) -> list[int]:
        return evenly_spread(list(self.thumbnails))

    def collect(self, sheet: Sequence[int], tracks: Sequence[Track]) -> tuple[dict[int, np.ndarray], dict[int, bytes]]:
        import cv2

        pictures = {}
        for n in sheet:
            picture = cv2.imdecode(np.frombuffer(self.store.read_bytes(self.thumbnails[n]), np.uint8), cv2.IMREAD_COLOR)
            if picture is not None:
                pictures[n] = picture
        snapshots = {}
        for track in tracks:
            crops = self.crops.get(track.tracker_id, {})
            # the crop of the track's best sighting of the hour, else its best one in some segment
            chosen = crops.get(track.best_row["frame_idx"]) or (crops[max(crops)] if crops else None)
            if chosen is not None:
                snapshots[track.tracker_id] = self.store.read_bytes(chosen)
        return pictures, snapshots
