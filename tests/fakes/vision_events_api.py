"""A local stand-in for Roboflow Vision Events' write API (roboflow.md §3), with fault injection.

`POST /vision-events` (one event, 201 `{"eventId", "created"}`) and `POST /vision-events/batch`
(`{"events": [...]}`, at most 100, 201 `{"created", "eventIds"}`). Bearer auth (401 otherwise).
Every event is validated as the documented contract says: the required fields, the eventType
enum, the timestamp window (one year ago .. tomorrow), id lengths, customMetadata limits; an
invalid request gets 400 with a text body and stores nothing. A repeated eventId overwrites.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TYPES = {"quality_check", "inventory_count", "safety_alert", "custom", "operator_feedback"}
KEY = re.compile(r"^[a-zA-Z0-9_ -]{1,100}$")


@dataclass
class Fault:
    status: int
    retry_after: str | None = None


@dataclass
class FakeVisionEvents:
    api_key: str
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # eventId -> event
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request: path, headers, body
    faults: deque[Fault] = field(default_factory=deque)

    def start(self) -> FakeVisionEvents:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": raw.decode()})
                status, body = fake.handle(self.path, self.headers.get("Authorization", ""), raw)
                self.send_response(status)
                if status == 429 and fake.last_retry_after:
                    self.send_header("Retry-After", fake.last_retry_after)
                payload = body if isinstance(body, str) else json.dumps(body)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(payload.encode())))
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.last_retry_after: str | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, path: str, auth: str, raw: bytes) -> tuple[int, Any]:
        if self.faults:
            fault = self.faults.popleft()
            self.last_retry_after = fault.retry_after
            return fault.status, f"fault injected ({fault.status})"
        if auth != f"Bearer {self.api_key}":
            return 401, "Unauthorized: missing or invalid API key"
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, "Body is not JSON"
        route = path.rstrip("/").split("?")[0]
        if route == "/vision-events":
            errors = validate(body)
            if errors:
                return 400, "; ".join(errors)
            self.events[body["eventId"]] = body
            return 201, {"eventId": body["eventId"], "created": True}
        if route == "/vision-events/batch":
            events = body.get("events")
            if not isinstance(events, list) or not 1 <= len(events) <= 100:
                return 400, "events must be a list of 1 to 100 events"
            errors = [f"events[{i}]: {e}" for i, event in enumerate(events) for e in validate(event)]
            if errors:
                return 400, "; ".join(errors)
            for event in events:
                self.events[event["eventId"]] = event
            return 201, {"created": len(events), "eventIds": [e["eventId"] for e in events]}
        return 404, f"No route {path}"


def validate(event: dict[str, Any]) -> list[str]:
    errors = [f"{name} is required" for name in ("eventId", "eventType", "useCaseId", "timestamp") if not event.get(name)]
    if event.get("eventType") and event["eventType"] not in TYPES:
        errors.append("eventType is invalid")
    for name in ("useCaseId", "deviceId", "streamId", "workflowId"):
        if len(str(event.get(name) or "")) > 256:
            errors.append(f"{name} is too long")
    try:
        stamp = datetime.fromisoformat(str(event.get("timestamp", "")).replace("Z", "+00:00"))
        now = datetime.now(timezone.utc)
        if not now - timedelta(days=365) <= stamp <= now + timedelta(days=1):
            errors.append("timestamp must be within the past year and no later than tomorrow")
    except ValueError:
        errors.append("timestamp is not ISO 8601")
    metadata = event.get("customMetadata") or {}
    if len(metadata) > 100:
        errors.append("customMetadata has more than 100 keys")
    for key, value in metadata.items():
        if not KEY.match(key):
            errors.append(f"customMetadata key {key!r} is invalid")
        if isinstance(value, str) and len(value) > 1000:
            errors.append(f"customMetadata value of {key!r} is too long")
        elif not isinstance(value, (str, int, float, bool)):
            errors.append(f"customMetadata value of {key!r} has an invalid type")
    return errors
