"""The sensors that notify: two run-status sensors (a run failed; a run succeeded) and a health sensor
(cameras down and back, the disk guard). Each queues its notifications in the outbox and delivers
what is due; see webhook.py. They run in the daemon, never in a run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from video_assets.disk_guard import lowest_space
from video_assets.notify.events import CameraState, camera_change, disk_change, run_failed, run_succeeded
from video_assets.notify.webhook import Delivery, Notification, Outbox
from video_assets.settings import NotifySettings, Settings
from video_assets.streams.cameras import CameraConfigError
from video_assets.streams.store import CameraStore

RUN_FAILURE_SENSOR = "notify_run_failure"
RUN_SUCCESS_SENSOR = "notify_run_success"
HEALTH_SENSOR = "notify_health"
HEALTH_INTERVAL_S = 15


def outbox(settings: Settings, log: logging.Logger) -> Outbox:
    assert settings.notify is not None
    return Outbox(settings.state_dir / "notify" / "outbox", settings.notify.max_age_s, log)


def notify(box: Outbox, notifications: Iterable[Notification], wanted: frozenset[str]) -> Delivery:
    """Queue the notifications of the events the settings ask for, then deliver what is due."""
    for notification in notifications:
        if notification.event in wanted:
            box.put(notification)
    return box.deliver()


def build_notify_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    assert settings.notify is not None
    wanted = settings.notify.events

    @dg.run_failure_sensor(
        name=RUN_FAILURE_SENSOR,
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Notifies (webhook) a video that failed for good, a hosted job that failed, a data test that failed.",
    )
    def notify_run_failure(context: dg.RunFailureSensorContext) -> None:
        notify(outbox(settings, context.log), run_failed(context.instance, context.dagster_run), wanted)

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name=RUN_SUCCESS_SENSOR,
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Notifies (webhook) a hosted job that finished, a data test that failed in a successful run.",
    )
    def notify_run_success(context: dg.RunStatusSensorContext) -> None:
        notify(outbox(settings, context.log), run_succeeded(context.instance, context.dagster_run), wanted)

    return [notify_run_failure, notify_run_success, build_health_sensor(settings, settings.notify)]


def build_health_sensor(settings: Settings, options: NotifySettings) -> dg.SensorDefinition:
    cameras = CameraStore.from_settings(settings)
    watched: tuple[Path, ...] = (settings.predictions_dir, settings.dagster_home, settings.streams_dir)

    @dg.sensor(
        name=HEALTH_SENSOR,
        minimum_interval_seconds=HEALTH_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Notifies (webhook) a camera down for longer than VIDEO_ASSETS_CAMERA_DOWN_AFTER and back, "
        "the disk guard tripping and clearing; delivers notifications that are due.",
    )
    def notify_health(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        now = datetime.now(UTC)
        cursor = json.loads(context.cursor) if context.cursor else {}
        notifications, states = [], {}
        for name in _camera_names(cameras, context.log):
            previous = CameraState(**cursor["cameras"][name]) if name in cursor.get("cameras", {}) else None
            state, notification = camera_change(
                name, cameras.read_status(name), previous, options.camera_down_after_s, now
            )
            if state is not None:
                states[name] = state.__dict__
            if notification is not None:
                notifications.append(notification)
        space = lowest_space(watched, settings.disk_guard)
        disk = disk_change(space, cursor.get("disk_low", False), now)
        notifications += [disk] if disk else []
        delivery = notify(outbox(settings, context.log), notifications, options.events)
        context.update_cursor(json.dumps({"cameras": states, "disk_low": space.low}, sort_keys=True))
        return dg.SkipReason(
            f"{len(notifications)} new notification(s); delivered {len(delivery.sent)}, "
            f"{len(delivery.failed)} to retry, {len(delivery.dropped)} dropped."
        )

    return notify_health


def _camera_names(cameras: CameraStore, log: logging.Logger) -> list[str]:
    try:
        return cameras.config().names
    except CameraConfigError as exc:
        log.warning(f"Cameras are not watched: {exc}")
        return []
