"""Where camera data waits for Dagster: committed segments, each worker's status, and its lock.

Segments and status files live in a `Store` (storage.py): the folder `<VIDEO_ASSETS_HOME>/streams`
on one machine; on many (VIDEO_ASSETS_CLUSTER), the object store's `<prefix>/streams`, so the camera
hosts, the control plane's camera sensor and the workers that publish camera hours share no disk.

```
<camera store>/<camera>/
    status.json              rewritten by the worker (CameraStore.status_every_s): its health between segments
    <YYYY-MM-DDTHH>/         one folder per UTC hour: the camera window
        <segment>/           one committed segment: detections, frames, camera_gaps, then
                             camera_segments (.parquet), with its thumbnails/ and snapshots/
<VIDEO_ASSETS_HOME>/streams/<camera>/   on the camera host
    worker.lock              held by the camera's one worker while it runs (one machine; many: a Redis lease)
    outbox/<hour>/<segment>/ committed segments waiting to be published to the store (kept if it is down)
```

A segment exists for readers once its `camera_segments.parquet` does, and that file is published last
(on one machine the whole folder appears by one rename; an object store has no rename), so readers never
see part of a segment.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from video_assets.settings import Settings, url_with_password
from video_assets.storage import Store, store_at
from video_assets.streams.cameras import CameraConfig, load_camera_config
from video_assets.streams.lease import Lease, file_lease, redis_lease
from video_assets.streams.status import STATUS_FILE, WorkerStatus, parse_status, status_data

SEGMENT_TABLES = ("detections", "frames", "camera_segments", "camera_gaps")
SEGMENT_MARKER = "camera_segments.parquet"  # published last: a segment without it is not (yet) whole
LOCK_FILE = "worker.lock"
OUTBOX = "outbox"
LOCAL_STATUS_EVERY_S = 1.0
# An object store bills every PUT: once a second is 86,400 a day per camera. Every 5 s is still three
# heartbeats within HEARTBEAT_STALE_S (15 s), so a live worker never looks dead; state changes are
# written at once (worker.py).
STORE_STATUS_EVERY_S = 5.0
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


def window_key(camera: str, start: datetime) -> str:
    """Where a camera window's segments are in the camera store."""
    return f"{camera}/{window_name(start)}"


def segment_name(segment: str) -> str:
    """The name of a segment (its key's last part): when it was opened, so names sort in time."""
    return segment.rsplit("/", 1)[-1]


def parse_window(name: str) -> datetime | None:
    if not _WINDOW_NAME.match(name):
        return None
    return datetime.strptime(name, _WINDOW_FORMAT).replace(tzinfo=UTC)


class CameraStore(dg.ConfigurableResource):
    """The camera configuration file, and the store of committed segments and status files."""

    root: str  # this machine's streams folder: locks and the outbox (and on one machine, the store itself)
    config_file: str
    store_url: str | None = None  # s3://bucket/prefix/streams on many machines; None: `root`
    store_endpoint: str | None = None
    store_region: str = "us-east-1"
    lease_url: str | None = None  # Redis (many machines): one recorder per camera across hosts
    lease_password_env: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> CameraStore:
        redis = settings.cluster.redis if settings.cluster else None
        url, endpoint, region = settings.shared("streams")
        return cls(
            root=str(settings.streams_dir),
            config_file=str(settings.camera_config_path),
            store_url=url if settings.cluster else None,
            store_endpoint=endpoint,
            store_region=region,
            lease_url=redis.url if redis else None,
            lease_password_env=redis.password_env if redis else None,
        )

    def config(self) -> CameraConfig:
        return load_camera_config(Path(self.config_file))

    def data(self) -> Store:
        """The store of segments and status files."""
        return store_at(self.store_url or self.root, self.store_endpoint, self.store_region)

    @property
    def status_every_s(self) -> float:
        """How often a worker rewrites its status file when its state has not changed."""
        return STORE_STATUS_EVERY_S if self.store_url else LOCAL_STATUS_EVERY_S

    def camera_dir(self, camera: str) -> Path:
        """This machine's folder of the camera: its lock and its outbox."""
        return Path(self.root) / camera

    def outbox_dir(self, camera: str) -> Path:
        return self.camera_dir(camera) / OUTBOX

    def cameras(self) -> list[str]:
        """Every camera with data in the store, configured or not."""
        return [name for name in self.data().names() if not name.startswith(".")]

    def windows(self, camera: str) -> list[datetime]:
        """The hours that hold at least a folder for this camera, oldest first."""
        return sorted(start for name in self.data().names(camera) if (start := parse_window(name)))

    def segments(self, camera: str, start: datetime) -> list[str]:
        """Keys of a window's committed segments, oldest first (names sort by the time they were opened);
        one listing of the window, and only segments whose last file is there."""
        window = window_key(camera, start)
        return sorted(
            f"{window}/{name}"
            for path in self.data().files(window)
            if (name := path.removesuffix(f"/{SEGMENT_MARKER}")) != path
            and "/" not in name
            and not name.startswith(".")
        )

    def segment_table(self, segment: str, table: str, schema: pa.Schema | None = None) -> pa.Table:
        """One table of a committed segment."""
        return self.data().read_table(f"{segment}/{table}.parquet", schema=schema)

    def segment_rows(self, camera: str, start: datetime) -> list[dict[str, Any]]:
        """The camera_segments rows (counts, first and last frame) of a window's committed segments."""
        return [
            row
            for seg in self.segments(camera, start)
            for row in self.segment_table(seg, "camera_segments").to_pylist()
        ]

    def latest_segment_row(self, camera: str) -> dict[str, Any] | None:
        """The camera_segments row of the camera's last committed segment (one read, not a whole hour's)."""
        for start in reversed(self.windows(camera)):
            segments = self.segments(camera, start)
            if segments:
                return self.segment_table(segments[-1], "camera_segments").to_pylist()[-1]
        return None

    def publish_segment(self, local: Path, camera: str, start: datetime) -> str:
        """Publish a finished segment folder whole (its marker last); the folder is consumed once published."""
        key = f"{window_key(camera, start)}/{local.name}"
        self.data().publish_folder(local, key, last=SEGMENT_MARKER)
        return key

    def remove_window(self, camera: str, start: datetime) -> None:
        """Remove a window's segments; their markers first, so no reader lists a segment missing files."""
        store = self.data()
        for segment in self.segments(camera, start):
            store.remove(f"{segment}/{SEGMENT_MARKER}")
        store.remove(window_key(camera, start))

    def read_status(self, camera: str) -> WorkerStatus | None:
        return parse_status(self.data().read_json(f"{camera}/{STATUS_FILE}"))

    def write_status(self, camera: str, status: WorkerStatus) -> None:
        self.data().write_json(f"{camera}/{STATUS_FILE}", status_data(status))

    def lease(self, camera: str) -> AbstractContextManager[Lease]:
        """Held by the camera's one worker while it records (a Redis lease on many machines)."""
        if self.lease_url:
            return redis_lease(str(url_with_password(self.lease_url, self.lease_password_env)), camera)
        return file_lease(self.camera_dir(camera) / LOCK_FILE, camera)
