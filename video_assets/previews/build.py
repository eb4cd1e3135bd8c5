"""Make one video's (or camera hour's) previews and tracks from its stored predictions.

Where the pictures come from differs: a video file is decoded again, only at the frames needed (the
contact sheet's and each track's best frame); a camera hour cannot be decoded after the fact, so its
worker keeps a thumbnail every few seconds and a crop of each object at its best moment (see
streams/segments.py), and those are used instead. Everything else is the same.

What lands, through the storage rules (hidden temporary names, published whole), in the predictions
and previews Stores (folders under the home on one machine, the cluster's object store on many):
```
predictions/tracks/video_id=<id>/part-0.parquet            the tracks table (its appearance marks it done)
predictions/tracks/video_id=<id>/snapshots-<token>/<tracker_id>.jpg
previews/<id>/<token>/contact_sheet.jpg, activity.png      at most PREVIEW_BUDGET bytes together
```
A new version gets a new token, so a browser never shows a stale picture; older versions are removed
once the new one is published.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from video_assets.predictions.schema import TRACKS
from video_assets.previews.chart import Series, activity_chart
from video_assets.previews.geometry import Geometry
from video_assets.previews.render import PREVIEW_BUDGET, Box, Tile, contact_sheet, encode_jpeg
from video_assets.previews.tracks import Track, build_tracks
from video_assets.storage import Store, new_token, table_key

SHEET_FRAMES = 12
MAX_SNAPSHOTS = 200  # per video: the tracks seen longest get one; a motion detector can make hundreds
STALE_TEMP_S = 24 * 3600.0
SHEET_FILE = "contact_sheet.jpg"
CHART_FILE = "activity.png"


class PictureSource(Protocol):
    def sheet_frames(self, processed: Sequence[int]) -> list[int]:
        """Which frames the contact sheet shows (those that can be shown, evenly spread)."""

    def collect(self, sheet: Sequence[int], tracks: Sequence[Track]) -> tuple[dict[int, np.ndarray], dict[int, bytes]]:
        """The sheet's pictures by frame, and a JPEG snapshot by tracker id (of some or all `tracks`)."""


@dataclass(frozen=True)
class VideoTables:
    """What was stored about one video: the inputs of its previews."""

    video_id: str
    source: str
    fps: float  # frames per second the rows stand for (a camera's processed rate)
    frame_size: tuple[int, int]  # of the picture the model saw
    workflow_version: str
    backend: str
    detections: pa.Table
    frames: pa.Table  # frame_idx, time_offset_s, frame_ts
    hour_start: datetime | None = None  # a camera hour's start; None for a file

    @classmethod
    def read(cls, predictions: Store, video_id: str, hour_start: datetime | None = None) -> VideoTables:
        """From the predictions store; FileNotFoundError (naming the missing table's uri) if one is missing."""
        video = _read(predictions, "videos", video_id).to_pylist()[0]
        return cls(
            video_id=video_id,
            source=video["source"],
            fps=video["fps"] or 1.0,
            frame_size=(video["width"], video["height"]),
            workflow_version=video["workflow_version"],
            backend=video["backend"],
            detections=_read(predictions, "detections", video_id),
            frames=_read(predictions, "frames", video_id, columns=["frame_idx", "time_offset_s", "frame_ts"]),
            hour_start=hour_start,
        )


def _read(predictions: Store, table: str, video_id: str, columns: list[str] | None = None) -> pa.Table:
    key = table_key(table, video_id)
    try:
        return predictions.read_table(key, columns=columns)
    except FileNotFoundError:
        uri = predictions.uri(key)  # pyarrow and s3fs name the missing file differently (or not at all)
        raise FileNotFoundError(errno.ENOENT, "no such table file", uri) from None


@dataclass
class PreviewResult:
    video_id: str
    tracks: list[dict[str, Any]]
    sheet: str  # where each was published: a local path, or an s3:// uri
    chart: str
    tracks_file: str
    sheet_frames: list[int]
    preview_bytes: int
    snapshots: int
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def crossings(self) -> int:
        return sum(len(t["crossings"]) for t in self.tracks)


def build_preview(
    tables: VideoTables,
    pictures: PictureSource,
    geometry: Geometry,
    predictions: Store,
    previews: Store,
    time_label: Callable[[float], str],
) -> PreviewResult:
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    tracks = build_tracks(tables.detections, geometry)
    timings["tracks_s"] = time.perf_counter() - clock

    clock = time.perf_counter()
    processed = tables.frames["frame_idx"].to_pylist()
    sheet_frames = pictures.sheet_frames(processed)
    ranked = sorted(tracks, key=lambda t: (-len(t.frames), t.tracker_id))[:MAX_SNAPSHOTS]
    sheet_pictures, snapshots = pictures.collect(sheet_frames, ranked)
    timings["pictures_s"] = time.perf_counter() - clock

    clock = time.perf_counter()
    offsets = dict(zip(processed, tables.frames["time_offset_s"].to_pylist(), strict=True))
    tiles = [
        _tile(n, sheet_pictures[n], tables, offsets.get(n, 0.0), time_label)
        for n in sheet_frames
        if n in sheet_pictures
    ]
    sheet = contact_sheet(tiles, geometry)
    chart = activity_chart(
        _series(tables, tracks, offsets), f"{tables.video_id}: objects in view by class, and line crossings"
    )
    sheet_jpeg = encode_jpeg(sheet, budget=PREVIEW_BUDGET - len(chart))
    timings["render_s"] = time.perf_counter() - clock

    clock = time.perf_counter()
    written = _publish(tables, tracks, snapshots, sheet_jpeg, chart, predictions, previews)
    timings["write_s"] = time.perf_counter() - clock
    return PreviewResult(
        video_id=tables.video_id,
        tracks=written["rows"],
        sheet=written["sheet"],
        chart=written["chart"],
        tracks_file=written["tracks"],
        sheet_frames=[n for n in sheet_frames if n in sheet_pictures],
        preview_bytes=len(sheet_jpeg) + len(chart),
        snapshots=len(snapshots),
        timings_s={k: round(v, 3) for k, v in timings.items()},
    )


def evenly_spread(frames: Sequence[int], count: int = SHEET_FRAMES) -> list[int]:
    """`count` frames spread evenly over `frames` (all of them if there are fewer), first and last included."""
    ordered = frames if isinstance(frames, range) and frames.step > 0 else sorted(set(frames))
    if len(ordered) <= count:
        return list(ordered)
    return [ordered[round(i * (len(ordered) - 1) / (count - 1))] for i in range(count)]


def _tile(
    number: int, picture: np.ndarray, tables: VideoTables, offset_s: float, time_label: Callable[[float], str]
) -> Tile:
    on_frame = tables.detections.filter(pc.equal(tables.detections["frame_idx"], number)).to_pylist()
    boxes = [Box(r["x"], r["y"], r["width"], r["height"], r["tracker_id"], r["class_name"]) for r in on_frame]
    return Tile(picture, tables.frame_size, f"frame {number}  {time_label(offset_s)}  {len(boxes)} obj", boxes)


def _series(tables: VideoTables, tracks: Sequence[Track], offsets_by_frame: dict[int, float]) -> Series:
    """Detections per processed frame, by class, in bins of a few seconds (at most ~720 bins)."""
    offsets = tables.frames["time_offset_s"].to_numpy()
    span = float(offsets.max()) if len(offsets) else 0.0
    bin_s = next(b for b in (1.0, 5.0, 10.0, 30.0, 60.0, 300.0) if span / b <= 720 or b == 300.0)
    bins = int(span // bin_s) + 1
    frames_per_bin = np.bincount((offsets // bin_s).astype(int), minlength=bins).astype(float)
    frames_per_bin[frames_per_bin == 0] = np.nan  # no frame processed: no value, not zero
    counts = {}
    det_offsets = tables.detections["time_offset_s"].to_numpy()
    det_classes = np.array(tables.detections["class_name"].to_pylist(), dtype=object)
    for name in sorted(set(det_classes)):
        mine = (det_offsets[det_classes == name] // bin_s).astype(int)
        counts[name] = list(np.bincount(mine, minlength=bins)[:bins] / frames_per_bin)
    crossings = [
        (offsets_by_frame.get(c["frame_idx"], 0.0), f"{c['line']} {c['direction']}")
        for t in tracks
        for c in t.crossings
    ]
    label = (
        f"seconds of video (bins of {bin_s:g} s)"
        if tables.hour_start is None
        else (f"seconds after {tables.hour_start:%Y-%m-%d %H}:00 UTC (bins of {bin_s:g} s)")
    )
    return Series(bin_s, label, counts, crossings)


def _publish(
    tables: VideoTables,
    tracks: Sequence[Track],
    snapshots: dict[int, bytes],
    sheet_jpeg: bytes,
    chart_png: bytes,
    predictions: Store,
    previews: Store,
) -> dict[str, Any]:
    """Snapshots and pictures first (new folders), then the tracks table, then remove older versions."""
    token = new_token()
    tracks_key = table_key("tracks", tables.video_id)
    tracks_folder = tracks_key.rsplit("/", 1)[0]
    snapshot_key = f"{tracks_folder}/snapshots-{token}"
    preview_key = f"{tables.video_id}/{token}"
    predictions.write_folder(
        snapshot_key, {f"{tracker}.jpg": data for tracker, data in snapshots.items()}, STALE_TEMP_S
    )
    previews.write_folder(preview_key, {SHEET_FILE: sheet_jpeg, CHART_FILE: chart_png}, STALE_TEMP_S)
    frame_s = 1.0 / tables.fps
    rows = [
        {
            "video_id": tables.video_id,
            "source": tables.source,
            **track.row(frame_s),
            "snapshot": predictions.uri(f"{snapshot_key}/{track.tracker_id}.jpg")
            if track.tracker_id in snapshots
            else None,
            "workflow_version": tables.workflow_version,
            "backend": tables.backend,
        }
        for track in tracks
    ]
    staging = predictions.staging({"tracks": tracks_key}, STALE_TEMP_S)
    try:
        pq.write_table(pa.Table.from_pylist(rows, schema=TRACKS), staging.temps["tracks"], compression="zstd")
        published = staging.publish()
    except BaseException:
        staging.discard()
        raise
    predictions.remove_other_versions(tracks_folder, "snapshots-", keep=f"snapshots-{token}")
    previews.remove_other_versions(tables.video_id, "", keep=token)
    return {
        "rows": rows,
        "sheet": previews.uri(f"{preview_key}/{SHEET_FILE}"),
        "chart": previews.uri(f"{preview_key}/{CHART_FILE}"),
        "tracks": published["tracks"],
    }
