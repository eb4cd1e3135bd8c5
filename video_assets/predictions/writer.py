"""Streams per-frame predictions into Parquet, and makes them visible all at once or not at all.

Rows are flushed as row groups every few hundred frames, so memory does not grow with video length.
Each table is written to a hidden temporary file beside its final path (same filesystem) and
renamed into place only when the whole video has been processed; readers that glob `*.parquet`
never see a partial file, and an exception or a kill leaves the previous version untouched.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from video_assets.backends.base import BackendIdentity, FramePrediction
from video_assets.ingest.probe import VideoProbe
from video_assets.predictions.schema import TABLES

PART_NAME = "part-0.parquet"
_STALE_TEMP_S = 24 * 3600


class NoFramesError(Exception):
    """The backend finished without delivering a single frame."""


def table_file(root: Path, table: str, video_id: str) -> Path:
    return root / table / f"video_id={video_id}" / PART_NAME


def temp_file(final: Path, token: str) -> Path:
    """The hidden name a table is written under beside `final`; globs for `*.parquet` never match it."""
    return final.with_name(f".{final.name}.{token}.tmp")


def frame_rows(frame: FramePrediction, common: dict) -> tuple[list[dict], dict]:
    """The detections rows and the frames row of one processed frame; `common` holds their shared columns."""
    detections = [{**common, **det.__dict__} for det in frame.detections]
    outputs = json.dumps(frame.outputs, sort_keys=True)
    return detections, {**common, "detection_count": len(frame.detections), "outputs": outputs}


@dataclass(frozen=True)
class WriteSummary:
    frames_expected: int
    frames_processed: int
    frames_missing: int
    detections: int
    tracks: int
    classes: tuple[str, ...]
    files: dict[str, Path]


class PredictionWriter:
    """A PredictionSink that writes the detections, frames and videos tables of one video."""

    def __init__(
        self,
        root: Path,
        video: VideoProbe,
        identity: BackendIdentity,
        flush_every: int = 512,
        frames_expected: int | None = None,
    ):
        self.root = root
        self.video = video
        self.identity = identity
        self.frames_expected = video.media.frame_count if frames_expected is None else frames_expected
        self.flush_every = flush_every
        self._base_ts_us = int(video.media.recorded_at.timestamp() * 1_000_000)
        self._token = uuid.uuid4().hex[:8]
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._rows: dict[str, list[dict]] = {"detections": [], "frames": []}
        self._last_frame_idx = -1
        self.frames_processed = 0
        self.detections = 0
        self._tracks: set[int] = set()
        self._classes: set[str] = set()
        self._committed = False

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._committed:
            self.abort()

    def add_frame(self, frame: FramePrediction) -> None:
        if frame.frame_idx <= self._last_frame_idx:
            raise ValueError(
                f"frame {frame.frame_idx} of {self.video.video_id} arrived after frame {self._last_frame_idx}"
            )
        self._last_frame_idx = frame.frame_idx
        common = {
            "video_id": self.video.video_id,
            "source": self.video.source,
            "frame_idx": frame.frame_idx,
            "time_offset_s": frame.time_offset_s,
            "frame_ts": self._base_ts_us + round(frame.time_offset_s * 1_000_000),
            "workflow_version": self.identity.workflow_version,
            "backend": self.identity.backend,
        }
        detection_rows, frame_row = frame_rows(frame, common)
        self._rows["detections"].extend(detection_rows)
        self._rows["frames"].append(frame_row)
        for det in frame.detections:
            if det.tracker_id is not None:
                self._tracks.add(det.tracker_id)
            self._classes.add(det.class_name)
        self.frames_processed += 1
        self.detections += len(frame.detections)
        if len(self._rows["frames"]) >= self.flush_every:
            self._flush()

    def commit(self) -> WriteSummary:
        """Finish all three tables and rename them into place (videos last: it marks the video done)."""
        if self.frames_processed == 0:
            raise NoFramesError(
                f"No frame of {self.video.path} was processed (expected {self.frames_expected}). "
                "The file may be truncated or in a codec OpenCV cannot read; re-encode it as MP4/H.264."
            )
        self._flush()
        self._write_table("videos", [self._video_row()])
        for writer in self._writers.values():
            writer.close()
        files = {}
        for table in ("detections", "frames", "videos"):
            final = table_file(self.root, table, self.video.video_id)
            os.replace(self._temp_path(table), final)
            files[table] = final
        self._committed = True
        expected = self.frames_expected
        return WriteSummary(
            frames_expected=expected,
            frames_processed=self.frames_processed,
            frames_missing=max(expected - self.frames_processed, 0),
            detections=self.detections,
            tracks=len(self._tracks),
            classes=tuple(sorted(self._classes)),
            files=files,
        )

    def abort(self) -> None:
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:
                pass
        for table in TABLES:
            self._temp_path(table).unlink(missing_ok=True)

    def _flush(self) -> None:
        for table in ("detections", "frames"):
            self._write_table(table, self._rows[table])
            self._rows[table] = []

    def _write_table(self, table: str, rows: list[dict]) -> None:
        schema = TABLES[table]
        if table not in self._writers:
            temp = self._temp_path(table)
            temp.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(temp.parent)
            self._writers[table] = pq.ParquetWriter(temp, schema, compression="zstd")
        if rows or table == "videos":
            self._writers[table].write_table(pa.Table.from_pylist(rows, schema=schema))

    def _temp_path(self, table: str) -> Path:
        return temp_file(table_file(self.root, table, self.video.video_id), self._token)

    def _video_row(self) -> dict:
        media = self.video.media
        return {
            "video_id": self.video.video_id,
            "source": self.video.source,
            "file": self.video.relative_path,
            "sha256": self.video.sha256,
            "bytes": self.video.bytes,
            "duration_s": media.duration_s,
            "fps": media.fps,
            "width": media.width,
            "height": media.height,
            "codec": media.codec,
            "recorded_at": media.recorded_at,
            "frames_expected": self.frames_expected,
            "frames_processed": self.frames_processed,
            "processed_at": datetime.now(timezone.utc),
            "workflow_version": self.identity.workflow_version,
            "backend": self.identity.backend,
        }


def remove_stale_temps(folder: Path) -> None:
    """Temporary files left by a killed run are invisible to readers; reclaim them after a day."""
    cutoff = time.time() - _STALE_TEMP_S
    for temp in folder.glob(".*.tmp"):
        try:
            if temp.stat().st_mtime < cutoff:
                temp.unlink()
        except FileNotFoundError:
            pass

