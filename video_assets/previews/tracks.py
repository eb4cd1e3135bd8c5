"""One row per tracked object, from a video's stored detections: the event list of a camera system.

Line crossings and zone entries are found by replaying the stored boxes through the same supervision
objects the workflow blocks use (`sv.LineZone`, `sv.PolygonZone`, same anchors), so a track's crossings
add up to the workflow's own `count_in` / `count_out` outputs; the workflow reports only those totals.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from video_assets.previews.geometry import Geometry, Line


def best_key(confidence: float | None, width: float, height: float, frame_idx: int) -> tuple[float, float, int]:
    """How a track's best sighting (its snapshot) is chosen: most confident, then largest, then earliest."""
    return (-1.0 if confidence is None or confidence != confidence else confidence, width * height, -frame_idx)


@dataclass
class Track:
    tracker_id: int
    classes: Counter = field(default_factory=Counter)
    first_frame: int = 0
    last_frame: int = 0
    first_seen_s: float = 0.0
    last_seen_s: float = 0.0
    first_ts: int = 0  # microseconds since the epoch, UTC
    last_ts: int = 0
    frames: set[int] = field(default_factory=set)
    confidences: list[float] = field(default_factory=list)
    best: tuple[float, float, int] = (-2.0, 0.0, 0)
    best_row: dict[str, Any] = field(default_factory=dict)
    crossings: list[dict[str, Any]] = field(default_factory=list)
    zones: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def class_name(self) -> str:
        return self.classes.most_common(1)[0][0]

    def row(self, frame_s: float) -> dict[str, Any]:
        """The `tracks` row (without video, lineage and snapshot); `frame_s`: the time one frame stands for."""
        best = self.best_row
        return {
            "tracker_id": self.tracker_id,
            "class_name": self.class_name,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "first_seen_s": self.first_seen_s,
            "last_seen_s": self.last_seen_s,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "duration_s": self.last_seen_s - self.first_seen_s + frame_s,
            "frames_seen": len(self.frames),
            "max_confidence": max(self.confidences) if self.confidences else None,
            "mean_confidence": float(np.mean(self.confidences)) if self.confidences else None,
            "best_frame": best["frame_idx"],
            "best_ts": best["frame_ts"],
            "best_x": best["x"],
            "best_y": best["y"],
            "best_width": best["width"],
            "best_height": best["height"],
            "crossings": self.crossings,
            "zones": list(self.zones.values()),
        }


def build_tracks(detections: pa.Table, geometry: Geometry) -> list[Track]:
    """Tracks from one video's detections (any order), ordered by tracker id. Untracked boxes are left out."""
    columns = [
        "frame_idx",
        "time_offset_s",
        "frame_ts",
        "class_name",
        "confidence",
        "x",
        "y",
        "width",
        "height",
        "tracker_id",
    ]
    table = detections.select(columns).filter(pc.is_valid(detections["tracker_id"]))
    table = table.sort_by([("frame_idx", "ascending")])
    data = {
        name: table[name].to_numpy(zero_copy_only=False) for name in columns if name not in ("frame_ts", "class_name")
    }
    data["frame_ts"] = table["frame_ts"].cast(pa.int64()).to_numpy()
    data["class_name"] = np.array(table["class_name"].to_pylist(), dtype=object)
    confidence = table["confidence"].to_pylist()
    tracks: dict[int, Track] = {}
    for i in range(table.num_rows):
        _add_sighting(tracks, {name: values[i] for name, values in data.items()}, confidence[i])
    if geometry and table.num_rows:
        _replay(data, geometry, tracks)
    return [tracks[t] for t in sorted(tracks)]


def _add_sighting(tracks: dict[int, Track], row: dict[str, Any], confidence: float | None) -> None:
    tracker = int(row["tracker_id"])
    frame_idx = int(row["frame_idx"])
    track = tracks.get(tracker)
    if track is None:
        track = tracks[tracker] = Track(
            tracker, first_frame=frame_idx, first_seen_s=float(row["time_offset_s"]), first_ts=int(row["frame_ts"])
        )
    track.last_frame, track.last_seen_s, track.last_ts = frame_idx, float(row["time_offset_s"]), int(row["frame_ts"])
    track.classes[row["class_name"]] += 1
    track.frames.add(frame_idx)
    if confidence is not None:
        track.confidences.append(float(confidence))
    key = best_key(confidence, float(row["width"]), float(row["height"]), frame_idx)
    if key > track.best:
        track.best = key
        track.best_row = {
            "frame_idx": frame_idx,
            "frame_ts": int(row["frame_ts"]),
            **{k: float(row[k]) for k in ("x", "y", "width", "height")},
        }


def _line_zone(sv: Any, line: Line) -> Any:
    """As line_counter builds it: its anchor if the block sets one, else supervision's default (four corners)."""
    if line.anchor:
        return sv.LineZone(sv.Point(*line.start), sv.Point(*line.end), triggering_anchors=[sv.Position(line.anchor)])
    return sv.LineZone(sv.Point(*line.start), sv.Point(*line.end))


def _replay(data: dict[str, np.ndarray], geometry: Geometry, tracks: dict[int, Track]) -> None:
    """Feed each frame's boxes to the workflow's line and zone objects, in frame order."""
    import supervision as sv

    lines = [(line, _line_zone(sv, line)) for line in geometry.lines]
    zones = [
        (
            zone,
            [
                sv.PolygonZone(
                    np.array(p, dtype=np.float64).round().astype(int), triggering_anchors=(sv.Position(zone.anchor),)
                )
                for p in zone.polygons
            ],
        )
        for zone in geometry.zones
    ]
    x, y, w, h = data["x"], data["y"], data["width"], data["height"]
    xyxy = np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=1).astype(np.float64)
    frame_idx, frame_ts, tracker_ids = data["frame_idx"], data["frame_ts"], data["tracker_id"].astype(int)
    starts = np.flatnonzero(np.r_[True, frame_idx[1:] != frame_idx[:-1]])
    ends = np.r_[starts[1:], len(frame_idx)]
    for start, end in zip(starts, ends, strict=True):
        ids = tracker_ids[start:end]
        boxes = sv.Detections(xyxy=xyxy[start:end], tracker_id=ids, class_id=np.zeros(end - start, dtype=int))
        frame, ts = int(frame_idx[start]), int(frame_ts[start])
        for line, counter in lines:
            crossed_in, crossed_out = counter.trigger(boxes)
            for direction, mask in (("in", crossed_in), ("out", crossed_out)):
                for tracker in ids[mask]:
                    tracks[int(tracker)].crossings.append(
                        {"line": line.name, "direction": direction, "frame_idx": frame, "ts": ts}
                    )
        for zone, polygons in zones:
            is_inside = np.any([polygon.trigger(boxes) for polygon in polygons], axis=0)
            for tracker in ids[is_inside]:
                visit = tracks[int(tracker)].zones.setdefault(
                    zone.name, {"zone": zone.name, "entered_frame": frame, "entered_ts": ts, "frames_inside": 0}
                )
                visit["frames_inside"] += 1
