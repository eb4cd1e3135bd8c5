"""Per-minute summary events of one processed video (or camera window), in Vision Events' shape.

One event per UTC minute that has frames: counts per class, detections, distinct tracks and line
crossings, with the source in customMetadata. The eventId is derived from (video, workflow
version, minute), so a re-run overwrites the same events instead of adding new ones.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from video_assets.predictions.writer import table_file

EVENT_NAMESPACE = uuid.UUID("7d0b7c1e-5f5d-4a8e-9c55-0c7e1b2a9f31")
MAX_CLASS_KEYS = 80  # customMetadata allows 100 keys; the rest hold the fixed fields
_KEY_CHARS = re.compile(r"[^a-zA-Z0-9_ -]+")


def summary_events(predictions_root: Path, video_id: str, use_case: str, now: datetime) -> list[dict[str, Any]]:
    frames = pq.read_table(table_file(predictions_root, "frames", video_id)).to_pylist()
    detections = pq.read_table(
        table_file(predictions_root, "detections", video_id), columns=["frame_ts", "class_name", "tracker_id"]
    ).to_pylist()
    if not frames:
        return []
    by_minute: dict[datetime, dict[str, Any]] = defaultdict(
        lambda: {"frames": 0, "detections": 0, "tracks": set(), "classes": defaultdict(int), "crossings": defaultdict(int)}
    )
    for frame, crossings in zip(frames, _crossings(frames)):
        cell = by_minute[_minute(frame["frame_ts"])]
        cell["frames"] += 1
        for counter, n in crossings.items():
            cell["crossings"][counter] += n
    for det in detections:
        cell = by_minute[_minute(det["frame_ts"])]
        cell["detections"] += 1
        cell["classes"][det["class_name"]] += 1
        if det["tracker_id"] is not None:
            cell["tracks"].add(det["tracker_id"])
    first = frames[0]
    return [
        _event(video_id, first["source"], first["workflow_version"], use_case, minute, cell, now)
        for minute, cell in sorted(by_minute.items())
    ]


def event_id(video_id: str, workflow_version: str, minute: datetime) -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{video_id}|{workflow_version}|{minute.isoformat()}"))


def _event(
    video_id: str, source: str, workflow_version: str, use_case: str, minute: datetime, cell: dict, now: datetime
) -> dict[str, Any]:
    # Vision Events accepts timestamps from one year ago to tomorrow; older footage is stamped now.
    in_window = now - timedelta(days=365) < minute < now + timedelta(days=1)
    classes = sorted(cell["classes"].items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CLASS_KEYS]
    metadata: dict[str, Any] = {
        "source": source,
        "video_id": video_id,
        "minute_utc": minute.isoformat(),
        "workflow_version": workflow_version,
        "frames": cell["frames"],
        "detections": cell["detections"],
        "tracks": len(cell["tracks"]),
        **{f"crossings {name}": n for name, n in sorted(cell["crossings"].items())},
        **{f"count {_KEY_CHARS.sub('_', name)[:90]}": n for name, n in classes},
    }
    return {
        "eventId": event_id(video_id, workflow_version, minute),
        "eventType": "custom",
        "useCaseId": use_case,
        "timestamp": (minute if in_window else now).isoformat().replace("+00:00", "Z"),
        "streamId": source,
        "eventData": {"value": cell["detections"], "externalId": video_id},
        "customMetadata": metadata,
    }


def _minute(ts: datetime) -> datetime:
    return ts.astimezone(timezone.utc).replace(second=0, microsecond=0)


def _crossings(frames: list[dict]) -> list[dict[str, int]]:
    """Per frame, the increase of each cumulative line counter (outputs named *count_in / *count_out)."""
    previous: dict[str, int] = {}
    steps = []
    for frame in frames:
        step = {}
        for name, total in json.loads(frame["outputs"]).items():
            if name.endswith(("count_in", "count_out")) and isinstance(total, (int, float)):
                step[name] = int(total) - previous.get(name, 0)
                previous[name] = int(total)
        steps.append(step)
    return steps
