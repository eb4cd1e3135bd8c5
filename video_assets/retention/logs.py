"""Logs under VIDEO_ASSETS_HOME/logs: rotated when large, removed when old.

The services (daemon.log, workers.log, code-server.log, webserver.log) and the camera supervisor
(cameras/<camera>.log) keep one file open for as long as they run, appending to it. Deleting such a
file would free nothing until the service stops, and renaming it would only move where it keeps
writing. So a log above VIDEO_ASSETS_LOG_ROTATE_SIZE is *copied and truncated* (logrotate's
`copytruncate`): its content goes, gzipped, to `logs/archive/`, and the file is truncated in place;
its writers opened it for appending, so their next line lands at the new end. A line written between
the copy and the truncation is lost. Archives, and logs nobody writes any more (`process-*.log` of
finished commands), are then removed by age and size like any other kind.
"""

from __future__ import annotations

import gzip
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from video_assets.retention.policy import Action, relative

ARCHIVE = "archive"
IN_USE_S = 3600.0  # a log written to within the last hour may still be open: rotated, never removed


def rotate_actions(logs_dir: Path, home: Path, rotate_bytes: int, now: datetime) -> list[Action]:
    """Every log above `rotate_bytes`: copy it gzipped into logs/archive/, then truncate it."""
    return [
        Action("logs", "rotate", relative(log, home), size, log.stat().st_mtime, _rotator(logs_dir, log, now))
        for log in _logs(logs_dir)
        if (size := log.stat().st_size) > rotate_bytes
    ]


def expired_log_candidates(logs_dir: Path, home: Path, now: datetime) -> list[Action]:
    """Archives, and logs not written to for an hour: what `VIDEO_ASSETS_KEEP_LOGS` may remove."""
    archives = sorted((logs_dir / ARCHIVE).glob("*.gz")) if (logs_dir / ARCHIVE).is_dir() else []
    idle = [log for log in _logs(logs_dir) if now.timestamp() - log.stat().st_mtime > IN_USE_S]
    return [
        Action("logs", "delete", relative(path, home), path.stat().st_size, path.stat().st_mtime, _deleter(path))
        for path in [*archives, *idle]
    ]


def _logs(logs_dir: Path) -> list[Path]:
    if not logs_dir.is_dir():
        return []
    return sorted(p for p in logs_dir.rglob("*.log") if p.is_file() and ARCHIVE not in p.relative_to(logs_dir).parts)


def rotate(logs_dir: Path, log: Path, now: datetime) -> Path:
    """Gzip what `log` holds into logs/archive/, then truncate it in place (its writers append)."""
    archive_dir = logs_dir / ARCHIVE
    archive_dir.mkdir(parents=True, exist_ok=True)
    name = "_".join(log.relative_to(logs_dir).parts)
    archive = archive_dir / f"{name}.{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.gz"
    partial = archive.with_name(f".{archive.name}.tmp")
    try:
        with open(log, "rb") as source, gzip.open(partial, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
            copied = source.tell()
        os.replace(partial, archive)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _drop_first(log, copied)
    return archive


def _drop_first(log: Path, copied: int) -> None:
    """Truncate `log`, keeping what was appended after the first `copied` bytes were archived."""
    with open(log, "r+b") as handle:
        handle.seek(copied)
        tail = handle.read()
        handle.seek(0)
        handle.truncate()
    if tail:
        with open(log, "ab") as handle:
            handle.write(tail)


def _rotator(logs_dir: Path, log: Path, now: datetime):
    return lambda: rotate(logs_dir, log, now)


def _deleter(path: Path):
    return lambda: path.unlink(missing_ok=True)
