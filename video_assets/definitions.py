"""The code location: each domain's definitions, merged, with resources bound from Settings."""

from __future__ import annotations

import dagster as dg

from video_assets.backends.hosted.assets import inference_job, uploaded_video
from video_assets.backends.resources import backend_from_env, configured_kind, configured_workflow_version
from video_assets.events.assets import build_vision_events_asset
from video_assets.events.sink import VisionEvents, vision_events_from_env
from video_assets.ingest.assets import VIDEO_GROUP, raw_video, videos_partitions
from video_assets.ingest.library import VideoLibrary
from video_assets.ingest.sensor import build_drop_folder_sensor
from video_assets.predictions.assets import FRAME_PREDICTIONS, build_frame_predictions
from video_assets.predictions.backfill import build_backfill_schedule
from video_assets.predictions.store import PredictionStore
from video_assets.settings import Settings
from video_assets.sql.assets import build_sql_assets, build_sql_automation_sensor
from video_assets.sql.warehouse import Warehouse


def build_definitions(
    settings: Settings,
    backend: dg.ConfigurableResource | None = None,
    events_sink: VisionEvents | None = None,
) -> dg.Definitions:
    backend = backend or backend_from_env(state_dir=settings.state_dir)
    events_sink = events_sink or vision_events_from_env()
    return dg.Definitions(
        assets=[
            raw_video,
            *_prediction_assets(backend),
            *build_sql_assets(settings.sql_dir, FRAME_PREDICTIONS),
            *([build_vision_events_asset(videos_partitions, FRAME_PREDICTIONS, VIDEO_GROUP)] if events_sink else []),
        ],
        sensors=[build_drop_folder_sensor(settings.sensor_interval_s), build_sql_automation_sensor()],
        schedules=[build_backfill_schedule(settings.backfill_cron, settings.backfill_batch)],
        resources={
            "library": VideoLibrary.from_settings(settings),
            "store": PredictionStore(root=str(settings.predictions_dir)),
            "warehouse": Warehouse(
                path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path)
            ),
            "backend": backend,
            **({"events_sink": events_sink} if events_sink else {}),
        },
        # Parallelism comes from one run per video; steps within a run share one process.
        executor=dg.in_process_executor,
    )


def _prediction_assets(backend: dg.ConfigurableResource) -> list[dg.AssetsDefinition]:
    """With the hosted backend, upload and job are steps of their own before frame_predictions."""
    version = configured_workflow_version(backend)
    if configured_kind(backend) == "hosted":
        return [uploaded_video, inference_job, build_frame_predictions([inference_job.key], version)]
    return [build_frame_predictions(workflow_version=version)]


defs = build_definitions(Settings.from_env())
