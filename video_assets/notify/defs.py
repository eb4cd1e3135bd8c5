"""Notifications: the webhook sensors, when VIDEO_ASSETS_WEBHOOK_URL is set."""

import dagster as dg

from video_assets.notify.sensors import build_notify_sensors
from video_assets.settings import Settings


def notify_definitions(settings: Settings) -> dg.Definitions:
    if settings.notify is None:
        return dg.Definitions()
    return dg.Definitions(sensors=build_notify_sensors(settings))
