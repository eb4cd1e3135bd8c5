"""Vision Events field limits (reference roboflow.md §3), checked before anything is sent."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

EVENT_TYPES = {"quality_check", "inventory_count", "safety_alert", "custom", "operator_feedback"}
MAX_BATCH = 100
MAX_ID_CHARS = 256
MAX_METADATA_KEYS = 100
MAX_KEY_CHARS = 100
MAX_STRING_CHARS = 1000
_KEY = re.compile(r"^[a-zA-Z0-9_ -]+$")


def problems(event: dict[str, Any], now: datetime) -> list[str]:
    """Everything the API would reject in this event (an empty list means it is valid)."""
    found = [f"missing {name}" for name in ("eventId", "eventType", "useCaseId", "timestamp") if not event.get(name)]
    if event.get("eventType") and event["eventType"] not in EVENT_TYPES:
        found.append(f"eventType {event['eventType']!r} is not one of {sorted(EVENT_TYPES)}")
    for name in ("useCaseId", "deviceId", "streamId", "workflowId"):
        if len(str(event.get(name) or "")) > MAX_ID_CHARS:
            found.append(f"{name} is longer than {MAX_ID_CHARS} characters")
    if event.get("timestamp"):
        try:
            stamp = datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
        except ValueError:
            found.append(f"timestamp {event['timestamp']!r} is not ISO 8601")
        else:
            if not now - timedelta(days=365) < stamp < now + timedelta(days=1):
                found.append(f"timestamp {event['timestamp']} is not between one year ago and tomorrow")
    metadata = event.get("customMetadata") or {}
    if len(metadata) > MAX_METADATA_KEYS:
        found.append(f"customMetadata has {len(metadata)} keys (at most {MAX_METADATA_KEYS})")
    for key, value in metadata.items():
        if len(key) > MAX_KEY_CHARS or not _KEY.match(key):
            found.append(f"customMetadata key {key!r} must be 1-{MAX_KEY_CHARS} of [a-zA-Z0-9_ -]")
        if not isinstance(value, (str, int, float, bool)):
            found.append(f"customMetadata[{key!r}] must be a string, number or boolean")
        elif isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            found.append(f"customMetadata[{key!r}] is longer than {MAX_STRING_CHARS} characters")
    return found
