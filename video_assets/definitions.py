"""The code location: each domain's definitions, merged, with resources bound from Settings."""

from __future__ import annotations

import dagster as dg

from video_assets.backends.resources import backend_from_env
from video_assets.ingest.assets import raw_video
from video_assets.ingest.library import VideoLibrary
from video_assets.ingest.sensor import build_drop_folder_sensor
from video_assets.predictions.assets import frame_predictions
from video_assets.predictions.backfill import build_backfill_schedule
from video_assets.predictions.store import PredictionStore
from video_assets.settings import Settings
from video_assets.sql.assets import build_sql_assets, build_sql_automation_sensor
from video_assets.sql.warehouse import Warehouse
from video_assets.streams.assets import build_camera_window
from video_assets.streams.sensor import build_camera_sensor
from video_assets.streams.store import CameraStore


def build_definitions(settings: Settings, backend: dg.ConfigurableResource | None = None) -> dg.Definitions:
    camera_window = build_camera_window(settings.cameras_start)
    return dg.Definitions(
        assets=[
            raw_video,
            frame_predictions,
            camera_window,
            *build_sql_assets(settings.sql_dir, [frame_predictions.key, camera_window.key]),
        ],
        sensors=[
            build_drop_folder_sensor(settings.sensor_interval_s),
            build_camera_sensor(settings.sensor_interval_s, settings.cameras_start),
            build_sql_automation_sensor(),
        ],
        schedules=[build_backfill_schedule(settings.backfill_cron, settings.backfill_batch)],
        resources={
            "library": VideoLibrary.from_settings(settings),
            "store": PredictionStore(root=str(settings.predictions_dir)),
            "cameras": CameraStore(root=str(settings.streams_dir), config_file=str(settings.camera_config_path)),
            "warehouse": Warehouse(
                path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path)
            ),
            "backend": backend or backend_from_env(),
        },
        # Parallelism comes from one run per video; steps within a run share one process.
        executor=dg.in_process_executor,
    )


defs = build_definitions(Settings.from_env())
