"""Previews: video_preview (and camera_preview, with the cameras), and the PreviewStore resource."""

import dagster as dg

from video_assets.previews.assets import build_camera_preview, build_video_preview
from video_assets.previews.store import PreviewStore
from video_assets.settings import Settings


def preview_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_video_preview(), build_camera_preview(settings.cameras_start)],
        resources={
            "previews": PreviewStore(
                predictions_root=str(settings.predictions_dir),
                previews_root=str(settings.previews_dir),
                media_url=settings.media_base_url,
            )
        },
    )
