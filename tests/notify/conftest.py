"""The webhook receiver (tests/servers/webhook_receiver.py) and the settings that point the sink at it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import dagster as dg
import pytest
from servers.webhook_receiver import SECRET, TOKEN, Receiver

from video_assets.settings import WEBHOOK_SECRET_ENV, WEBHOOK_URL_ENV, NotifySettings, Settings


@pytest.fixture
def receiver(monkeypatch) -> Iterator[Receiver]:
    """A running receiver; VIDEO_ASSETS_WEBHOOK_URL and _SECRET point at it."""
    started = Receiver().start()
    monkeypatch.setenv(WEBHOOK_URL_ENV, started.url)
    monkeypatch.setenv(WEBHOOK_SECRET_ENV, SECRET)
    yield started
    started.stop()


@pytest.fixture
def notifying(settings: Settings, receiver: Receiver) -> Settings:
    """`settings` with notifications on (as Settings.from_env does when the webhook variables are set)."""
    return dataclasses.replace(settings, notify=NotifySettings(camera_down_after_s=30))


@pytest.fixture(scope="session")
def secrets() -> tuple[str, str]:
    return SECRET, TOKEN


@pytest.fixture
def run_sensor(instance: dg.DagsterInstance):
    """Evaluate a run-status sensor of `defs` on the run of `result`, as the daemon does when that run ends."""

    def evaluate(defs: dg.Definitions, name: str, result: dg.ExecuteInProcessResult) -> None:
        run = instance.get_run_by_id(result.run_id)
        event = result.get_run_success_event() if result.success else result.get_run_failure_event()
        context = dg.build_run_status_sensor_context(
            sensor_name=name, dagster_event=event, dagster_instance=instance, dagster_run=run
        )
        sensor = defs.get_sensor_def(name)
        sensor(context.for_run_failure() if not result.success else context)

    return evaluate
