"""Live cameras: camera_window (camera x hour), the segment sensor and the CameraStore resource."""

import dagster as dg

from video_assets.settings import Settings
from video_assets.streams.assets import build_camera_window, publish_camera_hour_job
from video_assets.streams.sensor import build_camera_sensor
from video_assets.streams.store import CameraStore


def camera_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_camera_window(settings.cameras_start)],
        jobs=[publish_camera_hour_job()],
        sensors=[build_camera_sensor(settings.sensor_interval_s, settings.cameras_start)],
        resources={"cameras": CameraStore.from_settings(settings)},
    )
