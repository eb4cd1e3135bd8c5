"""A camera worker's status file (`<camera>/status.json` in the camera store): its one format.

The worker rewrites it whole (a rename on one machine, one PUT in an object store) every second, or every
few seconds in an object store (CameraStore.status_every_s); `video-assets cameras status`, the camera
sensor and the notification sensor read it through CameraStore.read_status (`parse_status`) and judge it
with `worker_health`, so a camera that is down, or a worker that died, shows between two committed segments.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

STATUS_FILE = "status.json"
HEARTBEAT_STALE_S = 15.0  # workers rewrite the file at least every 5 s; older means the worker is gone


@dataclass(frozen=True)
class WorkerStatus:
    camera: str
    url: str  # without credentials
    mode: str
    max_fps: float | None
    pid: int
    state: str  # starting | connecting | streaming | reconnecting | waiting | paused (disk guard) | stopped
    detail: str  # why, for waiting and paused
    started_at: str  # ISO 8601, UTC
    updated_at: str
    last_frame_ts: str | None
    fps: float  # frames processed per second over the last few seconds
    frames_received: int  # read from the camera: processed + dropped, once stopped
    frames_processed: int
    frames_dropped: int
    reconnects: int
    gaps: int
    gap_seconds: float
    segments_committed: int
    last_segment: str | None
    last_error: str | None


def status_data(status: WorkerStatus) -> dict[str, Any]:
    """What the status file holds."""
    return asdict(status)


def parse_status(data: dict[str, Any] | None) -> WorkerStatus | None:
    """The status a worker last wrote, or None if it never wrote one (or the file is unreadable)."""
    if data is None:
        return None
    names = {f.name for f in fields(WorkerStatus)}
    try:
        return WorkerStatus(**{k: v for k, v in data.items() if k in names})
    except TypeError:  # written by another version: treat as unknown
        return None


def worker_health(status: WorkerStatus | None, now: datetime) -> tuple[str, dict[str, Any]]:
    """The worker's state as a person should see it, and the figures behind it."""
    if status is None:
        return "never started", {"worker_state": "never started: run `video-assets cameras run`"}
    updated = datetime.fromisoformat(status.updated_at)
    state = status.state
    if state != "stopped" and (now - updated).total_seconds() > HEARTBEAT_STALE_S:
        state = "worker not running"
    last_frame = datetime.fromisoformat(status.last_frame_ts) if status.last_frame_ts else None
    metadata = {
        "worker_state": state,
        "worker_detail": status.detail,
        "heartbeat": updated.isoformat(),
        "last_frame_ts": last_frame.isoformat() if last_frame else "",
        "seconds_since_last_frame": round((now - last_frame).total_seconds(), 1) if last_frame else -1.0,
        "fps": float(status.fps),
        "frames_processed": int(status.frames_processed),
        "frames_dropped": int(status.frames_dropped),
        "reconnects": int(status.reconnects),
        "gaps": int(status.gaps),
        "gap_seconds": float(status.gap_seconds),
        "last_error": status.last_error or "",
    }
    return state, metadata
