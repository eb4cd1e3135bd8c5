"""The disk guard: below VIDEO_ASSETS_MIN_FREE, stop starting new writes, and resume once space returns.

A full disk fails writers in ways a person finds late (a segment that cannot be committed, a run that
dies halfway, a DuckDB file that cannot grow). So the writers that start work on their own check first:
camera workers pause (streams/worker.py) and the drop-folder sensor launches no runs (ingest/sensor.py),
each saying which filesystem is low and what the threshold is; both look again every tick.
Whatever is written while space runs out still goes through storage.py, so a write that fails
leaves nothing half-written behind.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from video_assets.settings import DiskGuard, format_bytes


@dataclass(frozen=True)
class DiskSpace:
    path: Path  # the folder that was asked about
    free_bytes: int  # available to an unprivileged writer
    total_bytes: int
    threshold_bytes: int
    setting: str  # the threshold as configured, e.g. "1.0 GB" or "5%"

    @property
    def low(self) -> bool:
        return self.free_bytes < self.threshold_bytes

    @property
    def reason(self) -> str:
        return (
            f"disk guard: {format_bytes(self.free_bytes)} free on the filesystem of {self.path}, below "
            f"VIDEO_ASSETS_MIN_FREE={self.setting}; free space there (see docs/running-for-months.md) "
            "and this resumes by itself"
        )


def disk_space(path: Path, guard: DiskGuard) -> DiskSpace:
    """Free space on the filesystem that holds `path` (or would hold it: the nearest existing folder)."""
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    stats = os.statvfs(existing)
    total = stats.f_blocks * stats.f_frsize
    if guard.min_free_percent is not None:
        threshold = math.ceil(total * guard.min_free_percent / 100)
    else:
        threshold = guard.min_free_bytes
    return DiskSpace(Path(path), stats.f_bavail * stats.f_frsize, total, threshold, guard.setting)


def lowest_space(paths: Iterable[Path], guard: DiskGuard) -> DiskSpace:
    """The filesystem with the least room above its threshold among those holding `paths`."""
    spaces = [disk_space(path, guard) for path in paths]
    return min(spaces, key=lambda space: space.free_bytes - space.threshold_bytes)
