"""Camera segments (`<camera>/<hour>/<segment>/` in the camera store) of hours already published into predictions.

A camera hour's segments are a staging copy: camera_window concatenates them into the hour's tables
under predictions/. Only a whole hour is ever removed, and only once it is over and its published
`camera_segments` table lists every segment in its folder, so nothing recorded is lost. On many
machines both live in the object store, and the segments are removed there. A later re-run of that
camera_window partition fails, saying its segments were removed; the published tables stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from video_assets.retention.policy import Action, shown
from video_assets.storage import Store, table_key
from video_assets.streams.store import CameraStore, camera_video_id, segment_name, window_key

SETTLE = timedelta(hours=1)  # after the end of an hour, its last segment and final publish are long done


def segment_actions(cameras: CameraStore, predictions: Store, home: Path, now: datetime) -> list[Action]:
    """Every published camera hour (of configured cameras or not) whose segments could be removed."""
    store = cameras.data()
    actions = []
    for camera in cameras.cameras():
        for start in cameras.windows(camera):
            end = start + timedelta(hours=1)
            if now < end + SETTLE or not _published_whole(cameras, predictions, camera, start):
                continue
            key = window_key(camera, start)
            size = sum(stored.size for stored in store.files(key).values())
            actions.append(
                Action(
                    "segments",
                    "delete",
                    shown(store.uri(key), home),
                    size,
                    end.timestamp(),
                    _remover(cameras, camera, start),
                )
            )
    return actions


def _published_whole(cameras: CameraStore, predictions: Store, camera: str, start: datetime) -> bool:
    """The hour's published camera_segments table names every segment in its folder."""
    video_id = camera_video_id(camera, start)
    if not predictions.exists(table_key("videos", video_id)):
        return False  # `videos` is published last: without it the hour is not (completely) published
    recorded = {segment_name(segment) for segment in cameras.segments(camera, start)}
    published = predictions.read_table(table_key("camera_segments", video_id), columns=["segment"])
    return recorded <= set(published.column("segment").to_pylist())


def _remover(cameras: CameraStore, camera: str, start: datetime) -> Callable[[], None]:
    return lambda: cameras.remove_window(camera, start)
