"""The pictures: a contact sheet of annotated frames and object snapshots (the chart: chart.py).

Boxes, tracker ids, the workflow's line and zone are drawn with supervision's annotators on frames
already shrunk to tile size (drawing on full frames and shrinking would make labels unreadable).
Everything is encoded to stay small: the sheet and the chart of one video together fit PREVIEW_BUDGET.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from video_assets.previews.geometry import Geometry

TILE_WIDTH = 240
TILE_MAX_HEIGHT = 240  # portrait (phone) frames: 135 x 240
SHEET_MAX_WIDTH = 1000  # fits the metadata column of the UI on a desktop screen
CAPTION_PX = 18
COLUMNS = 4
PREVIEW_BUDGET = 300_000  # bytes for the contact sheet and the chart of one video
SNAPSHOT_MAX_SIDE = 192
SNAPSHOT_MARGIN = 0.25  # of the box's size, on each side


@dataclass(frozen=True)
class Box:
    x: float  # centre, in pixels of the full frame
    y: float
    width: float
    height: float
    tracker_id: int | None
    class_name: str


@dataclass(frozen=True)
class Tile:
    """One frame of the contact sheet, with what was detected on it."""

    picture: np.ndarray  # BGR, any size (a full frame, or a camera's thumbnail)
    frame_size: tuple[int, int]  # width, height of the frame the boxes are measured in
    caption: str
    boxes: Sequence[Box] = ()


def contact_sheet(tiles: Sequence[Tile], geometry: Geometry) -> np.ndarray:
    """The tiles, annotated, in a grid of COLUMNS columns."""
    annotated = [_annotate(tile, geometry) for tile in tiles]
    if not annotated:
        return np.full((CAPTION_PX * 2, TILE_WIDTH, 3), 40, np.uint8)
    height = max(t.shape[0] for t in annotated)
    width = max(t.shape[1] for t in annotated)
    gap = 4
    columns = _columns(len(annotated), width + gap)
    rows = math.ceil(len(annotated) / columns)
    sheet = np.full((rows * (height + gap) + gap, columns * (width + gap) + gap, 3), 32, np.uint8)
    for i, tile in enumerate(annotated):
        top = gap + (i // columns) * (height + gap)
        left = gap + (i % columns) * (width + gap)
        sheet[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return sheet


def _columns(tiles: int, tile_width: int) -> int:
    """As many columns as fit SHEET_MAX_WIDTH (at least COLUMNS), preferring full rows."""
    fitting = max(COLUMNS, SHEET_MAX_WIDTH // tile_width)
    if tiles <= fitting:
        return max(tiles, 1)
    return next((c for c in range(fitting, COLUMNS - 1, -1) if tiles % c == 0), fitting)


def tile_size(frame_size: tuple[int, int]) -> tuple[int, int]:
    width, height = frame_size
    scale = min(TILE_WIDTH / width, TILE_MAX_HEIGHT / height)
    return max(round(width * scale), 1), max(round(height * scale), 1)


def _annotate(tile: Tile, geometry: Geometry) -> np.ndarray:
    import cv2
    import supervision as sv

    size = tile_size(tile.frame_size)
    scale = size[0] / tile.frame_size[0]
    scene: Any = cv2.resize(tile.picture, size, interpolation=cv2.INTER_AREA)
    for zone in geometry.zones:
        for polygon in zone.polygons:
            points = (np.array(polygon) * scale).round().astype(int)
            scene = sv.draw_filled_polygon(scene, points, sv.Color.from_hex("#3c9df0"), opacity=0.18)
            scene = sv.draw_polygon(scene, points, sv.Color.from_hex("#3c9df0"), thickness=1)
    for line in geometry.lines:
        start, end = (sv.Point(*(np.array(p) * scale)) for p in (line.start, line.end))
        scene = sv.draw_line(scene, start, end, sv.Color.from_hex("#ffd21f"), thickness=2)
    if tile.boxes:
        detections = _detections(tile.boxes, scale)
        labels = [f"#{b.tracker_id} {b.class_name}" if b.tracker_id is not None else b.class_name for b in tile.boxes]
        lookup = sv.ColorLookup.TRACK if detections.tracker_id is not None else sv.ColorLookup.CLASS
        scene = sv.BoxAnnotator(thickness=2, color_lookup=lookup).annotate(scene, detections)
        scene = sv.LabelAnnotator(text_scale=0.35, text_thickness=1, text_padding=2, color_lookup=lookup).annotate(
            scene, detections, labels=labels
        )
    caption = np.full((CAPTION_PX, size[0], 3), 24, np.uint8)
    cv2.putText(
        caption, tile.caption, (4, CAPTION_PX - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (235, 235, 235), 1, cv2.LINE_AA
    )
    return np.vstack([scene, caption])


def _detections(boxes: Sequence[Box], scale: float) -> Any:
    import supervision as sv

    xyxy = np.array([[b.x - b.width / 2, b.y - b.height / 2, b.x + b.width / 2, b.y + b.height / 2] for b in boxes])
    classes = sorted({b.class_name for b in boxes})
    tracked = all(b.tracker_id is not None for b in boxes)
    return sv.Detections(
        xyxy=xyxy * scale,
        class_id=np.array([classes.index(b.class_name) for b in boxes]),
        tracker_id=np.array([b.tracker_id for b in boxes]) if tracked else None,
    )


def encode_jpeg(picture: np.ndarray, budget: int | None = None, quality: int = 82) -> bytes:
    """JPEG bytes, at lower quality (then smaller) until they fit `budget`."""
    import cv2

    while True:
        ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("could not encode a JPEG")
        if budget is None or len(data) <= budget:
            return data.tobytes()
        if quality > 45:
            quality -= 10
        else:
            picture = cv2.resize(
                picture, (picture.shape[1] * 3 // 4, picture.shape[0] * 3 // 4), interpolation=cv2.INTER_AREA
            )


def snapshot(picture: np.ndarray, x: float, y: float, width: float, height: float) -> bytes:
    """The object at (x, y, width, height), with a margin around it, at most SNAPSHOT_MAX_SIDE pixels."""
    return snapshot_jpeg(crop_with_margin(picture, x, y, width, height))


def crop_with_margin(picture: np.ndarray, x: float, y: float, width: float, height: float) -> np.ndarray:
    """A copy of the box (centre x, y) and a margin around it, within the picture."""
    frame_h, frame_w = picture.shape[:2]
    margin_x, margin_y = max(width * SNAPSHOT_MARGIN, 8), max(height * SNAPSHOT_MARGIN, 8)
    left, right = int(max(x - width / 2 - margin_x, 0)), int(min(x + width / 2 + margin_x, frame_w))
    top, bottom = int(max(y - height / 2 - margin_y, 0)), int(min(y + height / 2 + margin_y, frame_h))
    return picture[top : max(bottom, top + 1), left : max(right, left + 1)].copy()


def snapshot_jpeg(crop: np.ndarray) -> bytes:
    return encode_jpeg(fit_snapshot(crop), quality=85)


def fit_snapshot(crop: np.ndarray) -> np.ndarray:
    """The crop at most SNAPSHOT_MAX_SIDE pixels on its longer side (as it is, if it is that small)."""
    import cv2

    scale = min(SNAPSHOT_MAX_SIDE / max(crop.shape[:2]), 1.0)
    if scale == 1.0:
        return crop
    size = (max(int(crop.shape[1] * scale), 1), max(int(crop.shape[0] * scale), 1))
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)


def thumbnail_jpeg(picture: np.ndarray, width: int = TILE_WIDTH * 2) -> bytes:
    """A camera frame kept for the hour's contact sheet: small, but sharp enough for a tile."""
    import cv2

    scale = min(width / picture.shape[1], 1.0)
    if scale < 1.0:
        picture = cv2.resize(picture, (width, max(int(picture.shape[0] * scale), 1)), interpolation=cv2.INTER_AREA)
    return encode_jpeg(picture, quality=75)
