"""Streams per-frame predictions into Parquet, and makes them visible all at once or not at all.

Rows are flushed as row groups every few hundred frames, so memory does not grow with video length.
Each table is written to a hidden temporary file beside its final path (same filesystem) and
renamed into place only when the whole video has been processed; readers that glob `*.parquet`
never see a partial file, and an exception or a kill leaves the previous version untouched.
With the tables lands the `pictures` table: the frames and crops the preview will show, kept as the
frames went by where the backend delivers them (previews/kept.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from video_assets.backends.base import BackendIdentity, FramePrediction
from video_assets.failures import VideoError
from video_assets.ingest.probe import VideoProbe
from video_assets.predictions.schema import PICTURES, TABLES
from video_assets.previews.build import MAX_SNAPSHOTS, evenly_spread
from video_assets.previews.kept import PictureKeeper
from video_assets.storage import LineCounters, Store, frame_rows, table_key, video_row

STALE_TEMP_S = 24 * 3600  # a temporary file this old was left by a killed run


class NoFramesError(VideoError):
    """The backend finished without delivering a single frame."""

    permanent_by_default = True


@dataclass(frozen=True)
class WriteSummary:
    frames_expected: int
    frames_processed: int
    frames_missing: int
    detections: int
    tracks: int
    classes: tuple[str, ...]
    files: dict[str, str]  # table -> where it was published (a local path, or an s3:// uri)


class PredictionWriter:
    """A PredictionSink that writes the detections, frames and videos tables of one video."""

    def __init__(
        self,
        store: Store,
        video: VideoProbe,
        identity: BackendIdentity,
        flush_every: int = 512,
        frames_expected: int | None = None,
    ):
        self.video = video
        self.identity = identity
        self.frames_expected = video.media.frame_count if frames_expected is None else frames_expected
        self.flush_every = flush_every
        self._base_ts_us = int(video.media.recorded_at.timestamp() * 1_000_000)
        # videos last: its appearance marks the video complete
        self._staging = store.staging(
            {t: table_key(t, video.video_id) for t in ("detections", "frames", "pictures", "videos")}, STALE_TEMP_S
        )
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._rows: dict[str, list[dict]] = {"detections": [], "frames": []}
        self._last_frame_idx = -1
        self._line_counters = LineCounters()
        self.frames_processed = 0
        self.detections = 0
        self._tracks: set[int] = set()
        self._classes: set[str] = set()
        self._pictures = PictureKeeper(evenly_spread(range(self.frames_expected)), MAX_SNAPSHOTS)
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
        frame_ts = self._base_ts_us + round(frame.time_offset_s * 1_000_000)
        detection_rows, frame_row = frame_rows(
            self.video.video_id, self.video.source, frame, frame_ts, self.identity, self._line_counters
        )
        self._rows["detections"].extend(detection_rows)
        self._rows["frames"].append(frame_row)
        for det in frame.detections:
            if det.tracker_id is not None:
                self._tracks.add(det.tracker_id)
            self._classes.add(det.class_name)
        if frame.image is not None:
            self._pictures.add(frame.frame_idx, frame.detections, frame.image)
        self.frames_processed += 1
        self.detections += len(frame.detections)
        if len(self._rows["frames"]) >= self.flush_every:
            self._flush()

    def commit(self) -> WriteSummary:
        """Finish all three tables and publish them together (videos last: it marks the video done)."""
        if self.frames_processed == 0:
            raise NoFramesError(
                f"No frame of {self.video.path} was processed (expected {self.frames_expected}). "
                "The file may be truncated or in a codec OpenCV cannot read; re-encode it as MP4/H.264."
            )
        self._flush()
        pq.write_table(pa.Table.from_pylist(self._pictures.rows(), schema=PICTURES), self._staging.temps["pictures"])
        self._write_table("videos", [self._video_row()])
        for writer in self._writers.values():
            writer.close()
        files = self._staging.publish()
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
        self._staging.discard()

    def _flush(self) -> None:
        for table in ("detections", "frames"):
            self._write_table(table, self._rows[table])
            self._rows[table] = []

    def _write_table(self, table: str, rows: list[dict]) -> None:
        schema = TABLES[table]
        if table not in self._writers:
            self._writers[table] = pq.ParquetWriter(self._staging.temps[table], schema, compression="zstd")
        if rows or table == "videos":
            self._writers[table].write_table(pa.Table.from_pylist(rows, schema=schema))

    def _video_row(self) -> dict:
        media = self.video.media
        return video_row(
            video_id=self.video.video_id,
            source=self.video.source,
            file=self.video.relative_path,
            identity=self.identity,
            duration_s=media.duration_s,
            fps=media.fps,
            size=(media.width, media.height),
            codec=media.codec,
            recorded_at=media.recorded_at,
            frames_expected=self.frames_expected,
            frames_processed=self.frames_processed,
            sha256=self.video.sha256,
            bytes=self.video.bytes,
            rotation=media.rotation,
        )
