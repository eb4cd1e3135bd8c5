"""Vision Events: the vision_events asset after frame_predictions, when a sink is configured."""

import dagster as dg

from video_assets.events.assets import build_vision_events_asset
from video_assets.events.sink import VisionEvents
from video_assets.ingest.assets import VIDEO_GROUP, videos_partitions
from video_assets.predictions.assets import FRAME_PREDICTIONS


def events_definitions(events_sink: VisionEvents | None) -> dg.Definitions:
    if events_sink is None:
        return dg.Definitions()
    return dg.Definitions(
        assets=[build_vision_events_asset(videos_partitions, FRAME_PREDICTIONS, VIDEO_GROUP)],
        resources={"events_sink": events_sink},
    )
