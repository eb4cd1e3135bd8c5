"""Where bytes live, and the one rule for writing them: nothing half-written is ever visible.

Every writer in the project (per-video Parquet, camera segments and hours, worker status files, the
published warehouse) goes through this module:

- `table_file` is where a table of one video lives: `<root>/<table>/video_id=<key>/part-0.parquet`
  (hive style, so readers glob `*/*.parquet`).
- `Staging` writes under hidden temporary names beside the final paths (same filesystem) and
  publishes them with `os.replace`, in order, only when everything was written; on error or a kill
  the temporary files stay hidden (they start with `.` and end in `.tmp`) and `sweep_stale_temps`
  reclaims them later.
- `frame_rows` and `video_row` build the rows of the `detections`, `frames` and `videos` tables, for
  files and cameras alike.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from video_assets.backends.base import BackendIdentity, FramePrediction

PART_NAME = "part-0.parquet"
TEMP_SUFFIX = ".tmp"


def table_file(root: Path, table: str, video_id: str) -> Path:
    return root / table / f"video_id={video_id}" / PART_NAME


def new_token() -> str:
    """Distinguishes the temporary files of concurrent writers of the same path."""
    return uuid.uuid4().hex[:8]


def temp_path(final: Path, token: str) -> Path:
    """The hidden name `final` is written under; globs for `*.parquet` never match it."""
    return final.with_name(f".{final.name}.{token}{TEMP_SUFFIX}")


class Staging:
    """Files written under hidden names, published together (in the order given) or not at all."""

    def __init__(self, finals: Mapping[str, Path], stale_after_s: float):
        self.token = new_token()
        self.finals = dict(finals)
        self.temps = {name: temp_path(final, self.token) for name, final in self.finals.items()}
        for folder in {temp.parent for temp in self.temps.values()}:
            folder.mkdir(parents=True, exist_ok=True)
            sweep_stale_temps(folder, stale_after_s)

    def publish(self) -> dict[str, Path]:
        """Rename every temporary file into place; the last one given is the last to appear."""
        for name, temp in self.temps.items():
            os.replace(temp, self.finals[name])
        return dict(self.finals)

    def discard(self) -> None:
        for temp in self.temps.values():
            temp.unlink(missing_ok=True)


def publish_folder(build: Path, final: Path) -> None:
    """Make a folder written under a hidden name appear whole (a directory rename)."""
    os.rename(build, final)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replace a small JSON file atomically, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(path, f"{os.getpid()}")
    with _removed_on_error(temp):
        temp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
        os.replace(temp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def copy_file(source: Path, final: Path) -> None:
    """Copy `source` over `final` so that readers see either the old file or the new one."""
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = temp_path(final, f"{os.getpid()}")
    with _removed_on_error(partial):
        shutil.copyfile(source, partial)
        os.replace(partial, final)


@contextmanager
def _removed_on_error(temp: Path) -> Iterator[None]:
    """A write that fails (a full disk: ENOSPC) takes its partial file with it."""
    try:
        yield
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def sweep_stale_temps(folder: Path, older_than_s: float) -> None:
    """Temporary files or folders a killed writer left behind are invisible; reclaim them once clearly abandoned."""
    if not folder.is_dir():
        return
    cutoff = time.time() - older_than_s
    for entry in folder.glob(f".*{TEMP_SUFFIX}"):
        try:
            if entry.stat().st_mtime >= cutoff:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
        except FileNotFoundError:
            pass


def frame_rows(
    video_id: str, source: str, frame: FramePrediction, frame_ts: datetime | int, identity: BackendIdentity
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The `detections` rows and the `frames` row of one processed frame."""
    common = {
        "video_id": video_id,
        "source": source,
        "frame_idx": frame.frame_idx,
        "time_offset_s": frame.time_offset_s,
        "frame_ts": frame_ts,
        "workflow_version": identity.workflow_version,
        "backend": identity.backend,
    }
    detections = [{**common, **det.__dict__} for det in frame.detections]
    outputs = json.dumps(frame.outputs, sort_keys=True)
    return detections, {**common, "detection_count": len(frame.detections), "outputs": outputs}


def video_row(
    *,
    video_id: str,
    source: str,
    file: str,
    identity: BackendIdentity,
    duration_s: float,
    fps: float,
    size: tuple[int, int],
    codec: str,
    recorded_at: datetime,
    frames_expected: int,
    frames_processed: int,
    sha256: str = "",
    bytes: int = 0,
) -> dict[str, Any]:
    """The `videos` row of a video file or a camera hour: what was recorded, and how it was processed."""
    width, height = size
    return {
        "video_id": video_id,
        "source": source,
        "file": file,
        "sha256": sha256,
        "bytes": bytes,
        "duration_s": duration_s,
        "fps": fps,
        "width": width,
        "height": height,
        "codec": codec,
        "recorded_at": recorded_at,
        "frames_expected": frames_expected,
        "frames_processed": frames_processed,
        "processed_at": datetime.now(timezone.utc),
        "workflow_version": identity.workflow_version,
        "backend": identity.backend,
    }


def remove_all(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
