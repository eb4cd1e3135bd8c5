"""Where camera data waits for Dagster: committed segments, each worker's status, and its lock.

```
<VIDEO_ASSETS_HOME>/streams/<camera>/
    worker.lock              held by the camera's one worker while it runs (one machine; many: a Redis lease)
    status.json              rewritten every second by the worker: its health between segments
    <YYYY-MM-DDTHH>/         one folder per UTC hour: the camera window
        <segment>/           one committed segment, renamed into place whole:
                             detections, frames, camera_segments, camera_gaps (.parquet)
        .<segment>.tmp/      a segment being written; never read
```

A segment appears all at once (one directory rename), so readers never see part of one.
"""

from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq

from video_assets.settings import Settings, url_with_password
from video_assets.streams.cameras import CameraConfig, load_camera_config
from video_assets.streams.lease import Lease, file_lease, redis_lease
from video_assets.streams.status import STATUS_FILE, WorkerStatus, read_status, write_status

SEGMENT_TABLES = ("detections", "frames", "camera_segments", "camera_gaps")
LOCK_FILE = "worker.lock"
_WINDOW_FORMAT = "%Y-%m-%dT%H"
_WINDOW_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}$")


def window_start(ts: datetime) -> datetime:
    """The UTC hour a wall-clock time falls in: the camera window it belongs to."""
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def window_name(start: datetime) -> str:
    return start.strftime(_WINDOW_FORMAT)


def camera_video_id(camera: str, start: datetime) -> str:
    """The video_id of a camera window in the prediction tables, e.g. lobby@2026-11-26T18."""
    return f"{camera}@{window_name(start)}"


def _parse_window(name: str) -> datetime | None:
    if not _WINDOW_NAME.match(name):
        return None
    return datetime.strptime(name, _WINDOW_FORMAT).replace(tzinfo=UTC)


class CameraStore(dg.ConfigurableResource):
    """The camera configuration file and the folder of staged segments under VIDEO_ASSETS_HOME."""

    root: str
    config_file: str
    lease_url: str | None = None  # Redis (many machines): one recorder per camera across hosts
    lease_password_env: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> CameraStore:
        redis = settings.cluster.redis if settings.cluster else None
        return cls(
            root=str(settings.streams_dir),
            config_file=str(settings.camera_config_path),
            lease_url=redis.url if redis else None,
            lease_password_env=redis.password_env if redis else None,
        )

    def config(self) -> CameraConfig:
        return load_camera_config(Path(self.config_file))

    def camera_dir(self, camera: str) -> Path:
        return Path(self.root) / camera

    def window_dir(self, camera: str, start: datetime) -> Path:
        return self.camera_dir(camera) / window_name(start)

    def windows(self, camera: str) -> list[datetime]:
        """The hours that hold at least a folder for this camera, oldest first."""
        folder = self.camera_dir(camera)
        if not folder.is_dir():
            return []
        return sorted(start for entry in os.scandir(folder) if entry.is_dir() and (start := _parse_window(entry.name)))

    def segments(self, camera: str, start: datetime) -> list[Path]:
        """Committed segments of one window, oldest first (names sort by the time they were opened)."""
        folder = self.window_dir(camera, start)
        if not folder.is_dir():
            return []
        return sorted(Path(e.path) for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))

    def segment_rows(self, camera: str, start: datetime) -> list[dict[str, Any]]:
        """The camera_segments rows (counts, first and last frame) of a window's committed segments."""
        return [
            row
            for seg in self.segments(camera, start)
            for row in pq.read_table(seg / "camera_segments.parquet").to_pylist()
        ]

    def latest_segment_row(self, camera: str) -> dict[str, Any] | None:
        for start in reversed(self.windows(camera)):
            rows = self.segment_rows(camera, start)
            if rows:
                return rows[-1]
        return None

    def status_path(self, camera: str) -> Path:
        return self.camera_dir(camera) / STATUS_FILE

    def read_status(self, camera: str) -> WorkerStatus | None:
        return read_status(self.status_path(camera))

    def write_status(self, camera: str, status: WorkerStatus) -> None:
        write_status(self.status_path(camera), status)

    def lease(self, camera: str) -> AbstractContextManager[Lease]:
        """Held by the camera's one worker while it records (a Redis lease on many machines)."""
        if self.lease_url:
            return redis_lease(str(url_with_password(self.lease_url, self.lease_password_env)), camera)
        return file_lease(self.camera_dir(camera) / LOCK_FILE, camera)
