"""The code location: each domain's definitions, merged, with resources bound from Settings."""

from __future__ import annotations

import dagster as dg

from video_assets.events.defs import events_definitions
from video_assets.ingest.defs import ingest_definitions
from video_assets.notify.defs import notify_definitions
from video_assets.predictions.assets import FRAME_PREDICTIONS
from video_assets.predictions.defs import prediction_definitions
from video_assets.previews.assets import CAMERA_PREVIEW, VIDEO_PREVIEW
from video_assets.previews.defs import preview_definitions
from video_assets.retention.defs import retention_definitions
from video_assets.settings import Settings
from video_assets.sql.defs import sql_definitions
from video_assets.streams.assets import CAMERA_WINDOW
from video_assets.streams.defs import camera_definitions


def table_producers() -> dict[str, list[dg.AssetKey]]:
    """Which assets write each Parquet table: the SQL models reading a table are downstream of them."""
    predictions = [FRAME_PREDICTIONS, CAMERA_WINDOW]
    return {
        "detections": predictions,
        "frames": predictions,
        "videos": predictions,
        "camera_segments": [CAMERA_WINDOW],
        "camera_gaps": [CAMERA_WINDOW],
        "tracks": [VIDEO_PREVIEW, CAMERA_PREVIEW],
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    """Everything the code location defines, from `settings` (tests pass their own)."""
    return dg.Definitions.merge(
        ingest_definitions(settings),
        prediction_definitions(settings),
        preview_definitions(settings),
        camera_definitions(settings),
        sql_definitions(settings, producers=table_producers()),
        events_definitions(settings),
        retention_definitions(settings),
        notify_definitions(settings),
        # Parallelism comes from one run per video; steps within a run share one process.
        dg.Definitions(executor=dg.in_process_executor),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by `dagster dev`, the daemon, the code server and the run workers, from the environment."""
    return build_definitions(Settings.from_env())
