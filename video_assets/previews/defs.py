"""Previews: video_preview (and camera_preview, with the cameras), and the PreviewStore resource."""

import dagster as dg

from video_assets.previews.assets import build_camera_preview, build_video_preview
from video_assets.previews.store import PreviewStore
from video_assets.settings import Settings


def preview_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_video_preview(), build_camera_preview(settings.cameras_start)],
        # Under the home on one machine, in the cluster's object store on many (Settings.shared).
        resources={"previews": PreviewStore.from_settings(settings)},
    )
