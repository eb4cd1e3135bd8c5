"""Vision Events against a local server that implements the documented contract (tests/fakes/vision_events_api.py)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import pytest

from fakes.vision_events_api import FakeVisionEvents
from video_assets.events.sink import VisionEvents
from video_assets.settings import API_KEY_ENV, BackendSettings, Settings, VisionEventsSettings


@pytest.fixture(scope="session")
def use_case() -> str:
    return "lobby-traffic"


@pytest.fixture
def events_api(api_key):
    api = FakeVisionEvents(api_key=api_key).start()
    yield api
    api.stop()


@pytest.fixture
def vision_events(events_api, api_key, use_case) -> Callable[..., VisionEvents]:
    """The sink resource against the fake, with short retry waits (`overrides`: other resource fields)."""
    return lambda **overrides: VisionEvents(
        use_case=use_case, api_url=events_api.url, api_key=api_key, backoff_seconds=0.05, **overrides
    )


@pytest.fixture
def events_settings(settings, events_api, use_case, api_key, monkeypatch) -> Settings:
    """A deployment with Vision Events on, as Settings.from_env reads it: the use case, the API URL, and
    ROBOFLOW_API_KEY set (bound as an EnvVar)."""
    monkeypatch.setenv(API_KEY_ENV, api_key)
    return dataclasses.replace(
        settings,
        vision_events=VisionEventsSettings(use_case=use_case, api_url=events_api.url),
        backend=BackendSettings(api_key_set=True),
    )


@pytest.fixture
def sent_events(events_api) -> Callable[[str], list[dict[str, Any]]]:
    """The events the fake holds for one video_id, by minute."""
    return lambda video_id: sorted(
        (e for e in events_api.events.values() if e["customMetadata"]["video_id"] == video_id),
        key=lambda e: e["customMetadata"]["minute_utc"],
    )
