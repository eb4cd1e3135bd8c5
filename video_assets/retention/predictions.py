"""Predictions Parquet (`<table>/video_id=<id>/` in the prediction store): kept forever unless
VIDEO_ASSETS_KEEP_PREDICTIONS says.

A video (or camera hour) goes whole: every table's folder for its video_id, the `videos` row first
(its presence marks a video complete). Its age is when it was processed (the `videos` file's time).
The SQL models keep their aggregates of it until they are next rebuilt; its Dagster partition stays
materialized (a re-run writes it again, if its source is still there). On many machines the tables
are in the object store, and are removed there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from video_assets.retention.policy import Action, shown
from video_assets.storage import PART_NAME, Store

COMPLETE_MARKER = "videos"


def prediction_actions(predictions: Store, home: Path) -> list[Action]:
    """Every complete video's tables, from one listing of the store."""
    listed = predictions.files()
    tables_of: dict[str, dict[str, int]] = defaultdict(dict)  # video_id=<id> -> table -> bytes
    for key, stored in listed.items():
        table, _, rest = key.partition("/")
        folder = rest.split("/", 1)[0]
        if folder.startswith("video_id=") and not table.startswith("."):
            tables_of[folder][table] = tables_of[folder].get(table, 0) + stored.size
    actions = []
    for folder, tables in sorted(tables_of.items()):
        marker = listed.get(f"{COMPLETE_MARKER}/{folder}/{PART_NAME}")
        if marker is None:
            continue  # being written, or being removed: not a complete video
        what = shown(predictions.uri(), home) + f"/*/{folder}"
        actions.append(
            Action(
                "predictions",
                "delete",
                what,
                sum(tables.values()),
                marker.modified,
                _remover(predictions, folder, sorted(tables, key=lambda t: t != COMPLETE_MARKER)),
            )
        )
    return actions


def _remover(predictions: Store, folder: str, tables: list[str]) -> Callable[[], None]:
    """`videos` first: without it the video is no longer complete for any reader."""

    def remove() -> None:
        for table in tables:
            predictions.remove(f"{table}/{folder}")

    return remove
