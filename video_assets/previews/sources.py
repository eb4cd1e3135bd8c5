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
