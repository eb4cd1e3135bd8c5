"""Vision Events: summary events after each video's predictions and each published camera hour."""

from typing import Any

import dagster as dg

from video_assets.events.assets import build_vision_events_asset
from video_assets.events.sink import VisionEvents
from video_assets.ingest.assets import VIDEO_GROUP, videos_partitions
from video_assets.predictions.assets import FRAME_PREDICTIONS
from video_assets.settings import API_KEY_ENV, Settings
from video_assets.sql.defs import sql_variables
from video_assets.sql.models import load_models, model_named
from video_assets.streams.assets import CAMERA_GROUP, CAMERA_WINDOW, camera_partitions, camera_window_video_id

CROSSING_STEPS_MODEL = "line_crossing_steps"


def events_definitions(settings: Settings) -> dg.Definitions:
    if settings.vision_events is None:
        return dg.Definitions()
    crossing_steps = model_named(load_models(settings.sql_dir, sql_variables()), CROSSING_STEPS_MODEL)
    # the key is read when a run starts, never stored; an unset EnvVar would fail every run
    key: dict[str, Any] = {"api_key": dg.EnvVar(API_KEY_ENV)} if settings.backend.api_key_set else {}
    sink = VisionEvents(use_case=settings.vision_events.use_case, api_url=settings.vision_events.api_url, **key)
    return dg.Definitions(
        assets=[
            build_vision_events_asset(
                videos_partitions,
                FRAME_PREDICTIONS,
                VIDEO_GROUP,
                "vision_events",
                lambda c: c.partition_key,
                crossing_steps,
            ),
            build_vision_events_asset(
                camera_partitions(settings.cameras_start),
                CAMERA_WINDOW,
                CAMERA_GROUP,
                "camera_vision_events",
                camera_window_video_id,
                crossing_steps,
            ),
        ],
        resources={"events_sink": sink},
    )
