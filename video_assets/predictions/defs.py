"""Predictions: frame_predictions (after the hosted steps when hosted), the backend, the backfill."""

import dagster as dg

from video_assets.backends.hosted.assets import inference_job, uploaded_video
from video_assets.backends.resources import configured_kind, configured_workflow_version
from video_assets.predictions.assets import build_frame_predictions
from video_assets.predictions.backfill import build_backfill_schedule
from video_assets.predictions.store import PredictionStore
from video_assets.settings import Settings


def prediction_definitions(settings: Settings, backend: dg.ConfigurableResource) -> dg.Definitions:
    version = configured_workflow_version(backend)
    if configured_kind(backend) == "hosted":  # upload and job are steps of their own
        assets = [uploaded_video, inference_job, build_frame_predictions([inference_job.key], version)]
    else:
        assets = [build_frame_predictions(workflow_version=version)]
    return dg.Definitions(
        assets=assets,
        schedules=[build_backfill_schedule(settings.backfill_cron, settings.backfill_batch)],
        resources={"backend": backend, "store": PredictionStore(root=str(settings.predictions_dir))},
    )
