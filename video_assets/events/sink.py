"""The VisionEvents resource: send summary events to Roboflow Vision Events, in batches, with retries."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field

from video_assets.events.contract import MAX_BATCH, problems
from video_assets.roboflow import DEFAULT_API_URL
from video_assets.roboflow.http import RetryPolicy, RoboflowHttp, RoboflowRequestError


@dataclass
class Delivery:
    sent: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # invalid events, never sent: "<eventId>: <why>"
    failed: list[str] = field(default_factory=list)  # batches that could not be delivered: the error

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.failed


class VisionEvents(dg.ConfigurableResource):
    """Off unless a use case is configured (VIDEO_ASSETS_VISION_EVENTS_USE_CASE)."""

    use_case: str = Field(description="Vision Events useCaseId the summaries are written to.")
    api_url: str = Field(default=DEFAULT_API_URL, description="Base URL of the Roboflow API.")
    api_key: str | None = Field(default=None, description="ROBOFLOW_API_KEY, bound through dagster.EnvVar.")
    attempts: int = Field(default=5, ge=1, description="Attempts per batch (429, 5xx, connection errors).")
    backoff_seconds: float = Field(
        default=2.0, ge=0, description="First retry wait, doubled each time; Retry-After wins."
    )

    def send(self, events: list[dict[str, Any]], log: logging.Logger) -> Delivery:
        """Validate every event, then POST the valid ones, at most 100 per request. Never raises."""
        delivery = Delivery()
        now = datetime.now(UTC)
        valid = []
        for event in events:
            found = problems(event, now)
            if found:
                delivery.rejected.append(f"{event.get('eventId')}: {'; '.join(found)}")
            else:
                valid.append(event)
        if valid and not self.api_key:
            delivery.failed.append("ROBOFLOW_API_KEY is not set: the events were not sent")
            return delivery
        http = RoboflowHttp(
            self.api_key or "", RetryPolicy(attempts=self.attempts, backoff_s=self.backoff_seconds), log
        )
        url = self.api_url.rstrip("/") + "/vision-events/batch"
        for start in range(0, len(valid), MAX_BATCH):
            batch = valid[start : start + MAX_BATCH]
            try:
                # Event ids are deterministic and a repeated id overwrites: resending is safe.
                http.json(
                    "send vision events",
                    "POST",
                    url,
                    idempotent=True,
                    json={"events": batch},
                    headers={"Authorization": f"Bearer {self.api_key}"},
                )
            except RoboflowRequestError as exc:
                delivery.failed.append(f"{len(batch)} event(s): {exc}")
            else:
                delivery.sent += [event["eventId"] for event in batch]
        return delivery
