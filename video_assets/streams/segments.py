"""Rolling segments: a camera's frames and gaps, committed to Parquet every `segment_s` seconds.

Rows are in the same schema as the files' tables, already in their final form: `video_id` is the
camera window (`<camera>@<YYYY-MM-DDTHH>`), `frame_idx` counts the window's processed frames from 0
(continuing across segments and worker restarts), `frame_ts` is the wall-clock time the frame was
received and `time_offset_s` its distance from the start of the hour. A window's table is then just
the concatenation of its segments.

A segment never spans two windows: a frame of a new hour seals the previous hour's segment.

A segment is written whole into this machine's outbox (`streams/<camera>/outbox/<hour>/<segment>/`,
renamed into place), then published to the camera store (streams/store.py), its camera_segments file
last. If the store cannot take it (an object store that is down), it waits in the outbox, where frames
are numbered from too, and is published at the next commit, by this worker or the next one.

A camera's frames cannot be decoded again later, so a segment also keeps what the hour's preview needs
(previews/sources.py): a JPEG thumbnail of a processed frame every THUMBNAIL_EVERY_S seconds
(`thumbnails/<frame_idx>.jpg`, ~30 KB each, 120 an hour) and, for each object, a crop of it at its best
sighting in the segment (`snapshots/<tracker_id>-<frame_idx>.jpg`: most confident, then largest), chosen
as the video files' snapshots are. Crops are kept in memory and encoded only when the segment commits.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from video_assets.backends.base import BackendIdentity, Detection, FramePrediction
from video_assets.predictions.schema import CAMERA_TABLES, TABLES
from video_assets.previews.kept import KeptCrop, keep_best_crops
from video_assets.previews.render import snapshot_jpeg, thumbnail_jpeg
from video_assets.storage import LineCounters, frame_rows, new_token, publish_folder, sweep_stale_temps, temp_path
from video_assets.streams.store import (
    SEGMENT_MARKER,
    CameraStore,
    camera_video_id,
    parse_window,
    window_name,
    window_start,
)

SCHEMAS = {**TABLES, **CAMERA_TABLES}
STALE_TEMP_S = 3600.0  # a segment folder still hidden after an hour was left by a killed worker
OUTBOX_HOURS_KEPT = 2  # an empty outbox folder of an hour older than this is removed
THUMBNAIL_EVERY_S = 30.0
THUMBNAILS = "thumbnails"
SNAPSHOTS = "snapshots"


@dataclass(frozen=True)
class Gap:
    """An interval in which the camera delivered no frame."""

    start: datetime  # the last frame received before it
    end: datetime  # the first frame received after it
    cause: str  # reconnect | stall | worker_restart
    reconnect_attempts: int = 0

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass
class _OpenSegment:
    window: datetime
    name: str
    opened_at: datetime
    opened_monotonic: float
    frame_idx_start: int
    detections: list[dict] = field(default_factory=list)
    frames: list[dict] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    dropped: int = 0
    reconnects: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    source_fps: float | None = None
    size: tuple[int, int] | None = None
    sealed: bool = False  # a later hour has begun: commit without waiting for segment_s
    thumbnails: dict[int, bytes] = field(default_factory=dict)  # frame_idx -> JPEG
    crops: dict[int, KeptCrop] = field(default_factory=dict)  # tracker -> its best sighting so far

    @property
    def empty(self) -> bool:
        return not self.frames and not self.gaps and not self.dropped


@dataclass(frozen=True)
class CommittedSegment:
    name: str
    frames: int
    dropped: int
    gaps: int
    last_frame_ts: datetime | None


class SegmentRecorder:
    """Collects one camera's frames and gaps and commits them as segments; safe to call from any thread.

    InferencePipeline delivers frames on its dispatch thread and status updates (which reveal gaps) on
    its decoding thread; the worker's main thread calls `commit_due` about once a second.
    """

    def __init__(
        self,
        store: CameraStore,
        camera: str,
        identity: BackendIdentity,
        segment_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.camera = camera
        self.identity = identity
        self.segment_s = segment_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._open: dict[datetime, _OpenSegment] = {}  # by window; two only around the turn of an hour
        self._next_idx: dict[datetime, int] = {}
        self._uncommitted: list[_OpenSegment] = []  # closed, waiting to be written (retried if writing fails)
        self._last_thumbnail: datetime | None = None
        self._line_counters = LineCounters()  # they run on across the camera's hours, until its worker restarts
        self.publish_error: str | None = None  # why the last publishing failed; None once it succeeds

    def add_frame(
        self,
        received_at: datetime,
        detections: tuple[Detection, ...],
        outputs: dict[str, Any],
        dropped_before: int = 0,
        reconnects_before: int = 0,
        size: tuple[int, int] | None = None,
        source_fps: float | None = None,
        image: Any = None,
    ) -> None:
        """Record one processed frame, received at `received_at`, after `dropped_before` unprocessed ones;
        `image` (the BGR picture the model saw) feeds the preview's thumbnails and object crops."""
        received_at = received_at.astimezone(UTC)
        with self._lock:
            segment = self._segment_for(received_at)
            frame_idx = self._next_idx[segment.window]
            self._next_idx[segment.window] = frame_idx + 1
            offset = (received_at - segment.window) / timedelta(microseconds=1) / 1_000_000
            frame = FramePrediction(frame_idx, offset, detections, outputs)
            video_id = camera_video_id(self.camera, segment.window)
            detection_rows, frame_row = frame_rows(
                video_id, self.camera, frame, received_at, self.identity, self._line_counters
            )
            segment.detections.extend(detection_rows)
            segment.frames.append(frame_row)
            segment.dropped += dropped_before
            segment.reconnects += reconnects_before
            segment.first_ts = segment.first_ts or received_at
            segment.last_ts = received_at
            segment.size = size or segment.size
            segment.source_fps = source_fps or segment.source_fps
            for window, older in self._open.items():
                older.sealed = older.sealed or window < segment.window
            if image is not None:
                self._keep_pictures(segment, frame_idx, received_at, detections, image)

    def _keep_pictures(
        self,
        segment: _OpenSegment,
        frame_idx: int,
        received_at: datetime,
        detections: tuple[Detection, ...],
        image: Any,
    ) -> None:
        if self._last_thumbnail is None or (received_at - self._last_thumbnail).total_seconds() >= THUMBNAIL_EVERY_S:
            segment.thumbnails[frame_idx] = thumbnail_jpeg(image)
            self._last_thumbnail = received_at
        keep_best_crops(segment.crops, frame_idx, detections, image)

    def add_dropped(self, count: int, at: datetime) -> None:
        """Frames read from the camera around `at` that will never be processed (purged at shutdown)."""
        with self._lock:
            self._segment_for(at.astimezone(UTC)).dropped += count

    def add_gap(self, gap: Gap) -> None:
        """Record a gap in the window in which it ended."""
        with self._lock:
            self._segment_for(gap.end.astimezone(UTC)).gaps.append(gap)

    def commit_due(self, force: bool = False) -> list[CommittedSegment]:
        """Commit every segment older than `segment_s` or sealed (every one, if `force`), then publish what
        waits in the outbox. Main thread only.

        A segment that fails to be written (a full disk) stays queued and is tried again next time (OSError);
        one the store does not take stays in the outbox and is published next time (see `publish_error`).
        """
        now = self._monotonic()
        with self._lock:
            due = [s for s in self._open.values() if force or s.sealed or now - s.opened_monotonic >= self.segment_s]
            for segment in due:
                del self._open[segment.window]
            self._uncommitted.extend(sorted(due, key=lambda s: s.opened_at))
        committed = []
        while self._uncommitted:
            segment = self._uncommitted[0]
            if not segment.empty:
                committed.append(self._commit(segment))
            self._uncommitted.pop(0)
        self.publish_waiting()
        return committed

    def publish_waiting(self) -> None:
        """Publish every segment of the outbox to the store, oldest first; stop at the first failure."""
        try:
            for window, folder in self._waiting():
                self.store.publish_segment(folder, self.camera, window)
        except Exception as exc:  # the store's client raises many kinds (connection, HTTP, timeouts)
            self.publish_error = f"could not publish to {self.store.data().uri()}: {type(exc).__name__}: {exc}"
        else:
            self.publish_error = None
            self._drop_past_hours()

    def _drop_past_hours(self) -> None:
        """Empty outbox folders of hours long over: nothing will be written there again."""
        before = window_start(datetime.now(UTC)) - timedelta(hours=OUTBOX_HOURS_KEPT)
        for hour in _folders(self.store.outbox_dir(self.camera)):
            window = parse_window(hour.name)
            if window is not None and window < before:
                sweep_stale_temps(hour, STALE_TEMP_S)  # left by a worker killed mid-write
                if not any(hour.iterdir()):
                    hour.rmdir()

    def _waiting(self) -> list[tuple[datetime, Path]]:
        """Segments in the outbox, whole (hidden ones are still being written), oldest first."""
        waiting = []
        for hour in _folders(self.store.outbox_dir(self.camera)):
            window = parse_window(hour.name)
            if window is not None:
                waiting += [(window, segment) for segment in _folders(hour) if not segment.name.startswith(".")]
        return sorted(waiting, key=lambda w: w[1].name)

    def _recorded_rows(self, window: datetime) -> list[dict[str, Any]]:
        """The camera_segments rows of a window's segments, waiting in the outbox or published. The outbox
        is read first: a segment leaves it only once published, so the store's listing then has it."""
        rows: list[dict[str, Any]] = []
        for start, folder in self._waiting():
            try:
                rows += pq.read_table(folder / SEGMENT_MARKER).to_pylist() if start == window else []
            except FileNotFoundError:  # published meanwhile by the main thread
                pass
        return rows + self.store.segment_rows(self.camera, window)

    def latest_row(self) -> dict[str, Any] | None:
        """The camera_segments row of the last segment committed (published or waiting), if any."""
        waiting = self._waiting()
        if waiting:
            return pq.read_table(waiting[-1][1] / SEGMENT_MARKER).to_pylist()[-1]
        return self.store.latest_segment_row(self.camera)

    def _segment_for(self, ts: datetime) -> _OpenSegment:
        window = window_start(ts)
        if window not in self._open:
            if window not in self._next_idx:
                rows = self._recorded_rows(window)  # a restarted worker continues the count
                self._next_idx[window] = max((r["frame_idx_start"] + r["frames_processed"] for r in rows), default=0)
            opened_at = datetime.now(UTC)
            self._open[window] = _OpenSegment(
                window=window,
                name=f"{opened_at:%Y%m%dT%H%M%S%f}Z-{new_token()[:6]}",
                opened_at=opened_at,
                opened_monotonic=self._monotonic(),
                frame_idx_start=self._next_idx[window],
            )
        return self._open[window]

    def _commit(self, segment: _OpenSegment) -> CommittedSegment:
        """Write the four tables into a hidden folder, then rename it into the outbox: all or nothing."""
        final = self.store.outbox_dir(self.camera) / window_name(segment.window) / segment.name
        final.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(final.parent, STALE_TEMP_S)
        temp = temp_path(final, "building")
        temp.mkdir(exist_ok=True)
        tables = {
            "detections": segment.detections,
            "frames": segment.frames,
            "camera_segments": [self._segment_row(segment)],
            "camera_gaps": [self._gap_row(segment.window, gap) for gap in segment.gaps],
        }
        try:
            for table, rows in tables.items():
                table_data = pa.Table.from_pylist(rows, schema=SCHEMAS[table])
                pq.write_table(table_data, temp / f"{table}.parquet", compression="zstd")
            self._write_pictures(segment, temp)
            publish_folder(temp, final)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return CommittedSegment(segment.name, len(segment.frames), segment.dropped, len(segment.gaps), segment.last_ts)

    @staticmethod
    def _write_pictures(segment: _OpenSegment, folder: Path) -> None:
        (folder / THUMBNAILS).mkdir(exist_ok=True)
        (folder / SNAPSHOTS).mkdir(exist_ok=True)
        for frame_idx, jpeg in segment.thumbnails.items():
            (folder / THUMBNAILS / f"{frame_idx}.jpg").write_bytes(jpeg)
        for tracker, (_, frame_idx, crop) in segment.crops.items():
            (folder / SNAPSHOTS / f"{tracker}-{frame_idx}.jpg").write_bytes(snapshot_jpeg(crop))

    def _segment_row(self, segment: _OpenSegment) -> dict[str, Any]:
        width, height = segment.size or (None, None)
        return {
            "video_id": camera_video_id(self.camera, segment.window),
            "camera": self.camera,
            "segment": segment.name,
            "window_start": segment.window,
            "opened_at": segment.opened_at,
            "committed_at": datetime.now(UTC),
            "frame_idx_start": segment.frame_idx_start,
            "frames_processed": len(segment.frames),
            "frames_dropped": segment.dropped,
            "first_frame_ts": segment.first_ts,
            "last_frame_ts": segment.last_ts,
            "reconnects": segment.reconnects,
            "source_fps": segment.source_fps,
            "width": width,
            "height": height,
            "workflow_version": self.identity.workflow_version,
            "backend": self.identity.backend,
        }

    def _gap_row(self, window: datetime, gap: Gap) -> dict[str, Any]:
        return {
            "video_id": camera_video_id(self.camera, window),
            "camera": self.camera,
            "gap_start": gap.start,
            "gap_end": gap.end,
            "duration_s": gap.duration_s,
            "cause": gap.cause,
            "reconnect_attempts": gap.reconnect_attempts,
        }


def _folders(parent: Path) -> list[Path]:
    """The folders in `parent`, sorted; none if it is gone (the main thread publishes while others read)."""
    try:
        return sorted(entry for entry in parent.iterdir() if entry.is_dir())
    except FileNotFoundError:
        return []
