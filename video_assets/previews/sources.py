"""Where preview pictures come from: what the run kept while predicting (a video file's `pictures` table,
a camera worker's thumbnails and crops), and for a video file whatever is not there, decoded again."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from video_assets.previews.build import evenly_spread
from video_assets.previews.frames import read_frames
from video_assets.previews.render import snapshot
from video_assets.previews.tracks import Track
from video_assets.storage import Store, table_key
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


def video_file_pictures(predictions: Store, video_id: str, path: Path | str) -> KeptPictures | VideoFileFrames:
    """What the run kept for the video (its `pictures` table), else the file alone (processed before
    pictures were kept)."""
    file = VideoFileFrames(path)
    try:
        return KeptPictures(predictions.read_table(table_key("pictures", video_id)), file)
    except FileNotFoundError:
        return file


class KeptPictures:
    """A video file's `pictures` table (previews/kept.py), and the file itself for what the table lacks: frames
    a hosted backend does not deliver, a frame the container declared but did not have, older videos."""

    def __init__(self, pictures: pa.Table, file: VideoFileFrames):
        self.file = file
        self.thumbnails: dict[int, bytes] = {}
        self.snapshots: dict[tuple[int, int], bytes] = {}  # (tracker, frame) -> JPEG
        for row in pictures.to_pylist():
            if row["tracker_id"] is None:
                self.thumbnails[row["frame_idx"]] = row["jpeg"]
            else:
                self.snapshots[(row["tracker_id"], row["frame_idx"])] = row["jpeg"]

    def sheet_frames(self, processed: Sequence[int]) -> list[int]:
        return self.file.sheet_frames(processed)

    def collect(self, sheet: Sequence[int], tracks: Sequence[Track]) -> tuple[dict[int, np.ndarray], dict[int, bytes]]:
        pictures = {n: decode_jpeg(self.thumbnails[n]) for n in sheet if n in self.thumbnails}
        snapshots = {}
        for track in tracks:
            kept = self.snapshots.get((track.tracker_id, track.best_row["frame_idx"]))
            if kept is not None:
                snapshots[track.tracker_id] = kept
        missing_sheet = [n for n in sheet if pictures.get(n) is None]
        missing_tracks = [t for t in tracks if t.tracker_id not in snapshots]
        if missing_sheet or missing_tracks:
            decoded, cropped = self.file.collect(missing_sheet, missing_tracks)
            pictures.update(decoded)
            snapshots.update(cropped)
        return {n: p for n, p in pictures.items() if p is not None}, snapshots


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
        pictures = {}
        for n in sheet:
            picture = decode_jpeg(self.store.read_bytes(self.thumbnails[n]))
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


def decode_jpeg(data: bytes) -> np.ndarray | None:
    """The BGR picture, or None if the bytes are not a readable JPEG."""
    import cv2

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
