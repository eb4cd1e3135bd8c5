"""Source videos after processing: kept where they were dropped (the default), moved, or deleted.

A video counts as processed once its frame_predictions partition is materialized and no run of it is
in progress; its age is the time of that materialization. With VIDEO_ASSETS_PROCESSED_SOURCES:
- `keep`: nothing happens;
- `move`: it goes to `<drop folder>/processed/<its path>` (a rename within the drop folder). The sensor
  does not look there; VideoLibrary.locate does, so a re-run (a backfill after a workflow change, a
  re-materialization in the UI) finds it by name and content as before;
- `delete`: it is removed. Its predictions stay; a re-run of its partition fails (permanently, saying
  so) until the file is put back.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import dagster as dg

from video_assets.ingest.files import DroppedFile, processed_folder, sha256_of
from video_assets.ingest.library import VideoLibrary
from video_assets.predictions.assets import FRAME_PREDICTIONS
from video_assets.retention.policy import Action, relative
from video_assets.runs import UNFINISHED, latest_materializations, runs_by_partition
from video_assets.settings import DropFolder


class SourceNotMovedError(RuntimeError):
    """Another file already sits where a processed video would be moved."""


def source_actions(library: VideoLibrary, instance: dg.DagsterInstance, home: Path, now: datetime) -> list[Action]:
    """Every processed video still in a drop folder, with what VIDEO_ASSETS_PROCESSED_SOURCES does to it."""
    verb = library.processed_sources
    if verb == "keep":
        return []
    processed = latest_materializations(instance, FRAME_PREDICTIONS)
    videos = [(dropped, library.key_for(dropped)) for dropped in library.scan() if dropped.is_video]
    videos = [(dropped, key) for dropped, key in videos if key in processed]
    busy = runs_by_partition(instance, [key for _, key in videos])
    folders = {folder.source: folder for folder in library.folders()}
    actions = []
    for dropped, key in videos:
        if any(record.dagster_run.status in UNFINISHED for record in busy.get(key, [])):
            continue
        carry_out = _mover(dropped, folders[dropped.source]) if verb == "move" else _deleter(dropped.path)
        actions.append(
            Action("sources", verb, relative(dropped.path, home), dropped.size, processed[key].timestamp, carry_out)
        )
    return actions


def move_to_processed(dropped: DroppedFile, folder: DropFolder) -> Path:
    """Rename the video to `<drop folder>/processed/<its path>`; if the same bytes are already there, drop it."""
    target = processed_folder(folder).path / dropped.relative_path
    if target.exists():
        if target.stat().st_size == dropped.size and sha256_of(target) == sha256_of(dropped.path):
            dropped.path.unlink()
            return target
        raise SourceNotMovedError(
            f"{dropped.path} was not moved: {target} already holds another file; rename one of them."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(dropped.path, target)
    return target


def _mover(dropped: DroppedFile, folder: DropFolder):
    return lambda: move_to_processed(dropped, folder)


def _deleter(path: Path):
    return lambda: path.unlink(missing_ok=True)
