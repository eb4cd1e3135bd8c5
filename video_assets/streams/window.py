"""Publish a camera window: one hour's committed segments become the prediction tables of one "video".

The window lands where a file's predictions land (`predictions/<table>/video_id=<camera>@<hour>/`), so
every SQL model reads cameras and files alike; its health lands beside them in `camera_segments` and
`camera_gaps`. The segments are read from the camera store (a folder, or an object store on many
machines). Each table is written under a hidden temporary name and renamed into place (or uploaded whole),
the `videos` row last; publishing again replaces the window's files, so rows are never duplicated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from video_assets.backends.base import BackendIdentity
from video_assets.failures import VideoError
from video_assets.predictions.schema import VIDEOS
from video_assets.predictions.writer import STALE_TEMP_S
from video_assets.storage import Store, table_key, video_row
from video_assets.streams.cameras import Camera
from video_assets.streams.segments import SCHEMAS
from video_assets.streams.store import SEGMENT_TABLES, CameraStore, camera_video_id, window_key


class NoSegmentsError(VideoError):
    """Nothing was recorded for this camera in this hour."""

    permanent_by_default = True


@dataclass(frozen=True)
class WindowSummary:
    video_id: str
    segments: int
    frames_processed: int
    frames_dropped: int
    detections: int
    first_frame_ts: datetime | None
    last_frame_ts: datetime | None
    source_fps: float
    reconnects: int
    gaps: list[dict[str, Any]]
    files: dict[str, str]  # table -> where it was published (a local path, or an s3:// uri)

    @property
    def gap_seconds(self) -> float:
        return sum(g["duration_s"] for g in self.gaps)

    @property
    def processed_frame_rate(self) -> float:
        """The camera's rate scaled to the frames processed, so that 1 / fps is the time each processed frame
        stands for, as for a file: the SQL models weigh frames by it."""
        received = self.frames_processed + self.frames_dropped
        return self.source_fps * self.frames_processed / received if received else self.source_fps

    @property
    def processed_fps(self) -> float:
        """Frames processed per second of the time the camera was delivering (the camera_health formula)."""
        if not self.first_frame_ts or not self.last_frame_ts:
            return 0.0
        silent_s = sum(
            max((g["gap_end"] - max(g["gap_start"], self.first_frame_ts)).total_seconds(), 0) for g in self.gaps
        )
        streaming_s = (self.last_frame_ts - self.first_frame_ts).total_seconds() - silent_s
        return round(self.frames_processed / streaming_s, 2) if streaming_s > 0 else 0.0


def publish_window(
    cameras: CameraStore, predictions: Store, camera_name: str, start: datetime, camera: Camera | None
) -> WindowSummary:
    """Concatenate the window's segments into its tables. `camera` (its configuration) may be gone."""
    segments = cameras.segments(camera_name, start)
    video_id = camera_video_id(camera_name, start)
    if not segments and predictions.exists(table_key("videos", video_id)):
        raise NoSegmentsError(
            f"Camera {camera_name!r}'s segments for {start:%Y-%m-%d %H}:00 UTC were removed by retention "
            "(VIDEO_ASSETS_KEEP_SEGMENTS) after the hour was published; its published tables in "
            f"{predictions.uri()} are unchanged and stay as they are."
        )
    if not segments:
        raise NoSegmentsError(
            f"Camera {camera_name!r} has no recorded segments for {start:%Y-%m-%d %H}:00 UTC in "
            f"{cameras.data().uri(window_key(camera_name, start))}. Its worker was not running or received no frames "
            "that hour; start it with `video-assets cameras run` (see `video-assets cameras status`)."
        )
    # videos last: its appearance marks the window complete
    tables = (*SEGMENT_TABLES, "videos")
    staging = predictions.staging({t: table_key(t, video_id) for t in tables}, STALE_TEMP_S)
    try:
        rows = {table: _concat(cameras, segments, table, staging.temps[table]) for table in SEGMENT_TABLES}
        segment_rows = pq.read_table(staging.temps["camera_segments"]).to_pylist()
        gap_rows = pq.read_table(staging.temps["camera_gaps"]).to_pylist()
        summary = _summarize(video_id, segment_rows, gap_rows, rows["detections"])
        row = _video_row(camera_name, camera, start, summary, segment_rows)
        pq.write_table(pa.Table.from_pylist([row], schema=VIDEOS), staging.temps["videos"])
        files = staging.publish()
    except BaseException:
        staging.discard()
        raise
    return replace(summary, files=files)


def _concat(cameras: CameraStore, segments: list[str], table: str, dest: Path) -> int:
    """Stream one table of every segment into `dest`, in order; one row group per segment."""
    schema = SCHEMAS[table]
    rows = 0
    with pq.ParquetWriter(dest, schema, compression="zstd") as writer:
        for segment in segments:
            data = cameras.segment_table(segment, table, schema=schema)
            if data.num_rows:
                writer.write_table(data)
                rows += data.num_rows
    return rows


def _summarize(video_id: str, segments: list[dict], gaps: list[dict], detections: int) -> WindowSummary:
    first = [s["first_frame_ts"] for s in segments if s["first_frame_ts"]]
    last = [s["last_frame_ts"] for s in segments if s["last_frame_ts"]]
    return WindowSummary(
        video_id=video_id,
        segments=len(segments),
        frames_processed=sum(s["frames_processed"] for s in segments),
        frames_dropped=sum(s["frames_dropped"] for s in segments),
        detections=detections,
        first_frame_ts=min(first, default=None),
        last_frame_ts=max(last, default=None),
        source_fps=next((s["source_fps"] for s in reversed(segments) if s["source_fps"]), 0.0),
        reconnects=sum(s["reconnects"] for s in segments),
        gaps=gaps,
        files={},
    )


def _video_row(
    camera_name: str, camera: Camera | None, start: datetime, summary: WindowSummary, segments: list[dict]
) -> dict[str, Any]:
    """The window as a video: recorded_at is the start of the hour, so frame_ts = recorded_at + time_offset_s."""
    sized = next((s for s in reversed(segments) if s["width"]), {"width": 0, "height": 0})
    span = (
        summary.last_frame_ts - summary.first_frame_ts
        if summary.first_frame_ts and summary.last_frame_ts
        else timedelta(0)
    )
    return video_row(
        video_id=summary.video_id,
        source=camera_name,
        file=camera.display_url if camera else camera_name,
        identity=BackendIdentity(segments[-1]["backend"], segments[-1]["workflow_version"]),
        duration_s=span.total_seconds(),
        fps=summary.processed_frame_rate,
        size=(sized["width"], sized["height"]),
        codec=camera.kind if camera else "stream",
        recorded_at=start,
        frames_expected=summary.frames_processed + summary.frames_dropped,
        frames_processed=summary.frames_processed,
    )
