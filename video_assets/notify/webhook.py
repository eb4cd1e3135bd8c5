"""The webhook sink: signed JSON notifications, queued on disk and delivered with retries and backoff.

Only sensors (in the daemon) notify, never a run, so a slow or dead receiver cannot hold a run up.
A notification is first written to the outbox (`state/notify/outbox/`, one small JSON file each);
each sensor tick then sends what is due, oldest first, within a time budget. A failed delivery is
retried a few times at once (the shared RetryingHttp client: backoff, Retry-After) and then on later
ticks with a growing pause, until it is `max_age_s` old; then it is dropped and the log says so.

Every request carries:
- the body: `{"id", "event", "title", "created_at", "details"}` (JSON; `id` is the same on every retry,
  so a receiver can drop duplicates);
- `X-Video-Assets-Event` (the event), `X-Video-Assets-Delivery` (the id);
- `X-Video-Assets-Signature-256: sha256=<hex>`: HMAC-SHA256 of the exact body bytes, keyed with
  VIDEO_ASSETS_WEBHOOK_SECRET. A receiver recomputes it and compares in constant time.
The URL (it may carry a token) and the secret are read from the environment when sending, and never
appear in logs, metadata or errors.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from video_assets.roboflow.http import HttpRequestError, RetryingHttp, RetryPolicy
from video_assets.settings import WEBHOOK_SECRET_ENV, WEBHOOK_URL_ENV, secret
from video_assets.storage import read_json, write_json

SIGNATURE_HEADER = "X-Video-Assets-Signature-256"
EVENT_HEADER = "X-Video-Assets-Event"
DELIVERY_HEADER = "X-Video-Assets-Delivery"
# Within one tick: a few quick attempts; a receiver that stays down is tried again on later ticks.
SEND_POLICY = RetryPolicy(
    attempts=3, backoff_s=0.5, max_backoff_s=2.0, connect_timeout_s=3.0, read_timeout_s=5.0, max_retry_after_s=5.0
)
LATER_POLICY = RetryPolicy(backoff_s=15.0, max_backoff_s=1800.0)  # the pause before the next tick's try
BUDGET_S = 20.0  # of one tick spent delivering


@dataclass(frozen=True)
class Notification:
    id: str  # the same on every retry: receivers deduplicate on it
    event: str  # video_failed | hosted_job | camera | disk_guard | data_test
    title: str  # one line for a person
    details: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def body(self) -> bytes:
        payload = {
            "id": self.id,
            "event": self.event,
            "title": self.title,
            "created_at": self.created_at,
            "details": self.details,
        }
        return json.dumps(payload, sort_keys=True, default=str).encode()


def signature(key: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # ids tried this tick and kept for later
    dropped: list[str] = field(default_factory=list)  # ids given up on (too old)


class Outbox:
    """Notifications waiting to be delivered, one JSON file each, in `folder`."""

    def __init__(self, folder: Path, max_age_s: float, log: logging.Logger):
        self.folder = folder
        self.max_age_s = max_age_s
        self.log = log

    def put(self, notification: Notification) -> None:
        """Queue a notification (again putting one with the same id while it waits changes nothing)."""
        path = self._path(notification.id)
        if not path.exists():
            entry = {"notification": notification.__dict__, "queued_at": time.time(), "attempts": 0, "next_at": 0.0}
            write_json(path, entry)

    def pending(self) -> list[Notification]:
        return [Notification(**entry["notification"]) for _, entry in self._entries()]

    def deliver(self, now: float | None = None, budget_s: float = BUDGET_S) -> Delivery:
        """Send what is due, oldest first, until the budget is spent or the receiver fails (it is likely down)."""
        delivery = Delivery()
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return delivery  # another sensor is delivering right now
            self._deliver(delivery, time.time() if now is None else now, budget_s)
        return delivery

    def _deliver(self, delivery: Delivery, now: float, budget_s: float) -> None:
        url, key = secret(WEBHOOK_URL_ENV), secret(WEBHOOK_SECRET_ENV)
        if not url or not key:
            return  # settings.py refuses a URL without a secret; unset since: keep the queue
        http = RetryingHttp(_secrets_of(url, key), SEND_POLICY, self.log)
        started = time.monotonic()
        for path, entry in self._entries():
            notification = Notification(**entry["notification"])
            if now - entry["queued_at"] > self.max_age_s:
                self.log.error(
                    f"Notification {notification.id} ({notification.title}) was not delivered within "
                    f"{self.max_age_s / 3600:g} h and is dropped; last error: {entry.get('last_error', '')}"
                )
                path.unlink(missing_ok=True)
                delivery.dropped.append(notification.id)
                continue
            if entry["next_at"] > now:
                continue
            if time.monotonic() - started > budget_s:
                return
            try:
                _post(http, url, key, notification)
            except HttpRequestError as exc:
                attempts = entry["attempts"] + 1
                wait = LATER_POLICY.backoff(attempts)
                write_json(path, {**entry, "attempts": attempts, "next_at": now + wait, "last_error": str(exc)})
                self.log.warning(
                    f"Notification {notification.id} not delivered to {_host(url)}: {exc}; trying again in {wait:.0f} s"
                )
                delivery.failed.append(notification.id)
                return
            path.unlink(missing_ok=True)
            delivery.sent.append(notification.id)

    def _entries(self) -> list[tuple[Path, dict[str, Any]]]:
        entries = [(p, read_json(p)) for p in self.folder.glob("*.json")] if self.folder.is_dir() else []
        return sorted(((p, e) for p, e in entries if e), key=lambda pe: (pe[1]["queued_at"], pe[0].name))

    def _path(self, notification_id: str) -> Path:
        return self.folder / f"{hashlib.sha256(notification_id.encode()).hexdigest()[:24]}.json"


def _post(http: RetryingHttp, url: str, key: str, notification: Notification) -> None:
    body = notification.body()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "video-assets",
        EVENT_HEADER: notification.event,
        DELIVERY_HEADER: notification.id,
        SIGNATURE_HEADER: signature(key, body),
    }
    # The receiver deduplicates on the id: sending again after an unclear failure is safe.
    http.send(f"notification {notification.event}", "POST", url, idempotent=True, data=body, headers=headers)


def _secrets_of(url: str, key: str) -> list[str]:
    """The secret, the URL, and the parts of it an HTTP error may quote (path, query, password)."""
    parts = urlsplit(url)
    return [key, url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.query, parts.password or ""]


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
