"""Predictions Parquet (`predictions/<table>/video_id=<id>/`): kept forever unless VIDEO_ASSETS_KEEP_PREDICTIONS says.

A video (or camera hour) goes whole: every table's folder for its video_id, the `videos` row first
(its presence marks a video complete). Its age is when it was processed (the `videos` file's time).
The SQL models keep their aggregates of it until they are next rebuilt; its Dagster partition stays
materialized (a re-run writes it again, if its source is still there).
"""

from __future__ import annotations

from pathlib import Path

from video_assets.retention.policy import Action, relative, remove_tree, tree_bytes
from video_assets.storage import PART_NAME

COMPLETE_MARKER = "videos"


def prediction_actions(predictions_root: Path, home: Path) -> list[Action]:
    marker_dir = predictions_root / COMPLETE_MARKER
    if not marker_dir.is_dir():
        return []
    tables = sorted((p for p in predictions_root.iterdir() if p.is_dir()), key=lambda p: p.name != COMPLETE_MARKER)
    actions = []
    for marker in sorted(marker_dir.glob(f"video_id=*/{PART_NAME}")):
        folders = [table / marker.parent.name for table in tables if (table / marker.parent.name).is_dir()]
        what = relative(predictions_root, home) + f"/*/{marker.parent.name}"
        size = sum(tree_bytes(folder) for folder in folders)
        actions.append(Action("predictions", "delete", what, size, marker.stat().st_mtime, _remover(folders)))
    return actions


def _remover(folders: list[Path]):
    def remove() -> None:
        for folder in folders:
            remove_tree(folder)

    return remove
