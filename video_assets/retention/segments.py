"""Camera segments (`streams/<camera>/<hour>/<segment>/`) of hours already published into predictions/.

A camera hour's segments are a staging copy: camera_window concatenates them into the hour's tables
under predictions/. Only a whole hour is ever removed, and only once it is over and its published
`camera_segments` table lists every segment in its folder, so nothing recorded is lost. A later
re-run of that camera_window partition fails, saying its segments were removed; the published
tables stay as they are.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from video_assets.retention.policy import Action, relative, remove_tree, tree_bytes
from video_assets.storage import table_file
from video_assets.streams.store import CameraStore, camera_video_id

SETTLE = timedelta(hours=1)  # after the end of an hour, its last segment and final publish are long done


def segment_actions(cameras: CameraStore, predictions_root: Path, home: Path, now: datetime) -> list[Action]:
    """Every published camera hour (of configured cameras or not) whose segments could be removed."""
    root = Path(cameras.root)
    names = (
        sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")) if root.is_dir() else []
    )
    actions = []
    for camera in names:
        for start in cameras.windows(camera):
            end = start + timedelta(hours=1)
            folder = cameras.window_dir(camera, start)
            if now < end + SETTLE or not _published_whole(cameras, predictions_root, camera, start):
                continue
            actions.append(
                Action(
                    "segments", "delete", relative(folder, home), tree_bytes(folder), end.timestamp(), _remover(folder)
                )
            )
    return actions


def _published_whole(cameras: CameraStore, predictions_root: Path, camera: str, start: datetime) -> bool:
    """The hour's published camera_segments table names every segment in its folder."""
    published = table_file(predictions_root, "camera_segments", camera_video_id(camera, start))
    if not table_file(predictions_root, "videos", camera_video_id(camera, start)).exists():
        return False  # `videos` is published last: without it the hour is not (completely) published
    recorded = {segment.name for segment in cameras.segments(camera, start)}
    return recorded <= set(pq.read_table(published, columns=["segment"]).column("segment").to_pylist())


def _remover(folder: Path):
    return lambda: remove_tree(folder)
