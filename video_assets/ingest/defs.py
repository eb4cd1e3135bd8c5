"""Ingest: the raw_video asset, the drop-folder sensor and the VideoLibrary resource."""

import dagster as dg

from video_assets.ingest.assets import process_video_job, raw_video
from video_assets.ingest.library import VideoLibrary
from video_assets.ingest.sensor import build_drop_folder_sensor
from video_assets.settings import Settings


def ingest_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[raw_video],
        jobs=[process_video_job()],
        sensors=[
            build_drop_folder_sensor(
                settings.sensor_interval_s,
                settings.source_queues,
                (settings.predictions_dir, settings.dagster_home),
                settings.disk_guard,
            )
        ],
        resources={"library": VideoLibrary.from_settings(settings)},
    )
