"""Per-minute summary events of one processed video (or camera window), in Vision Events' shape.

One event per UTC minute that has frames: counts per class, detections, distinct tracks and line
crossings, with the source in customMetadata. Line crossings come from the SQL model
`line_crossing_steps`, the one implementation of "crossings per frame" (a camera's counters run on
across hours and restart with its worker), so the events and `line_crossings_per_hour` agree. The
eventId is derived from (video, workflow version, minute), so a re-run overwrites the same events
instead of adding new ones.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from video_assets.predictions.store import PredictionStore
from video_assets.sql.models import SqlModel

EVENT_NAMESPACE = uuid.UUID("7d0b7c1e-5f5d-4a8e-9c55-0c7e1b2a9f31")
MAX_CLASS_KEYS = 80  # customMetadata allows 100 keys; the rest hold the fixed fields
_KEY_CHARS = re.compile(r"[^a-zA-Z0-9_ -]+")


def summary_events(
    store: PredictionStore, crossing_steps: SqlModel, video_id: str, use_case: str, now: datetime
) -> list[dict[str, Any]]:
    frames = store.read_table("frames", video_id, ["frame_ts", "source", "workflow_version"]).to_pylist()
    detections = store.read_table("detections", video_id, ["frame_ts", "class_name", "tracker_id"]).to_pylist()
    if not frames:
        return []
    by_minute: dict[datetime, dict[str, Any]] = defaultdict(
        lambda: {
            "frames": 0,
            "detections": 0,
            "tracks": set(),
            "classes": defaultdict(int),
            "crossings": defaultdict(int),
        }
    )
    for frame in frames:
        by_minute[_minute(frame["frame_ts"])]["frames"] += 1
    for minute, counter, crossings in _crossings_per_minute(store, crossing_steps, video_id):
        by_minute[_minute(minute)]["crossings"][counter] += crossings
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
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


def _crossings_per_minute(store: PredictionStore, crossing_steps: SqlModel, video_id: str) -> list[tuple]:
    """(minute, counter, crossings) of one video from the `line_crossing_steps` model.

    The model's counters run per file, or per camera across its hours, so reading this file's frames
    (or every hour of this camera up to this one) gives the same steps as reading everything.
    """
    import duckdb

    camera, sep, _ = video_id.partition("@")
    videos = f"{camera}@*" if sep else video_id
    steps = crossing_steps.render(lambda table: store.relation_sql(table, videos))
    with duckdb.connect() as conn:
        store.register(conn)
        return conn.execute(
            f"select date_trunc('minute', frame_ts), counter, sum(crossings)::bigint from ({steps}) "
            "where video_id = ? group by all",
            [video_id],
        ).fetchall()
