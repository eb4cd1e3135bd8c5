"""Vision Events: summary events after each video's predictions and each published camera hour."""

import dagster as dg

from video_assets.events.assets import build_vision_events_asset
from video_assets.events.sink import VisionEvents
from video_assets.ingest.assets import VIDEO_GROUP, videos_partitions
from video_assets.predictions.assets import FRAME_PREDICTIONS
from video_assets.settings import Settings
from video_assets.streams.assets import CAMERA_GROUP, CAMERA_WINDOW, camera_partitions, camera_window_video_id


def events_definitions(settings: Settings, events_sink: VisionEvents | None) -> dg.Definitions:
    if events_sink is None:
        return dg.Definitions()
    return dg.Definitions(
        assets=[
            build_vision_events_asset(
                videos_partitions, FRAME_PREDICTIONS, VIDEO_GROUP, "vision_events", lambda c: c.partition_key
            ),
            build_vision_events_asset(
                camera_partitions(settings.cameras_start),
                CAMERA_WINDOW,
                CAMERA_GROUP,
                "camera_vision_events",
                camera_window_video_id,
            ),
        ],
        resources={"events_sink": events_sink},
    )
