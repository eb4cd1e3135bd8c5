"""What lies in the drop folders: listing, filtering, fingerprints and content hashes."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from video_assets.settings import DropFolder

VIDEO_EXTENSIONS = frozenset(
    [
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".m2ts",
        ".wmv",
        ".flv",
        ".3gp",
        ".mjpeg",
    ]
)
# Names that mean "still being written" or "not for us": partial downloads, editor backups, lock files.
_TEMP_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".swp", "~")
_HASH_CHUNK = 1 << 20
# Where retention moves a drop folder's processed videos (VIDEO_ASSETS_PROCESSED_SOURCES=move), keeping their
# paths: `<drop folder>/processed/<path>`. The sensor does not look inside; VideoLibrary.locate does.
PROCESSED_DIR = "processed"


@dataclass(frozen=True)
class DroppedFile:
    source: str
    relative_path: str  # POSIX style, relative to the drop folder
    path: Path
    size: int
    mtime_ns: int
    ctime_ns: int

    @property
    def file_id(self) -> str:
        """Stable identity of the file's location (not its content)."""
        return f"{self.source}:{self.relative_path}"

    @property
    def fingerprint(self) -> tuple[int, int, int]:
        """Changes whenever the file is written, renamed into place, or replaced."""
        return (self.size, self.mtime_ns, self.ctime_ns)

    @property
    def is_video(self) -> bool:
        return self.path.suffix.lower() in VIDEO_EXTENSIONS


def is_ignored_name(name: str) -> bool:
    """Hidden files, temporary files and partial downloads are never picked up."""
    lowered = name.lower()
    return name.startswith((".", "~")) or lowered.endswith(_TEMP_SUFFIXES)


def scan_drop_folders(folders: Iterable[DropFolder]) -> list[DroppedFile]:
    """Every candidate file below the drop folders (hidden folders and each one's processed/ are skipped;
    missing folders are empty)."""
    return [found for folder in folders for found in _scan_folder(folder)]


def scan_processed(folders: Iterable[DropFolder]) -> list[DroppedFile]:
    """Videos retention moved to `<drop folder>/processed/`, with the path they had in the drop folder."""
    return [found for folder in folders for found in _scan_folder(processed_folder(folder), skip_processed=False)]


def processed_folder(folder: DropFolder) -> DropFolder:
    return DropFolder(folder.source, folder.path / PROCESSED_DIR)


def _scan_folder(folder: DropFolder, skip_processed: bool = True) -> Iterator[DroppedFile]:
    for dirpath, dirnames, filenames in os.walk(folder.path):
        top = skip_processed and Path(dirpath) == folder.path
        dirnames[:] = sorted(d for d in dirnames if not is_ignored_name(d) and not (top and d == PROCESSED_DIR))
        for name in sorted(filenames):
            if is_ignored_name(name):
                continue
            path = Path(dirpath, name)
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed between listing and stat
                continue
            if not path.is_file():
                continue
            yield DroppedFile(
                source=folder.source,
                relative_path=path.relative_to(folder.path).as_posix(),
                path=path,
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                ctime_ns=stat.st_ctime_ns,
            )


def sha256_of(path: Path) -> str:
    """Hash a file in chunks, so a large video is never read into memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ContentHashes:
    """sha256 of dropped files, memoized by (path, size, mtime, ctime) in a small SQLite file.

    A pure cache: deleting it costs only re-reading files. It lets the sensor, the CLI and the
    raw_video asset agree on a file's key without each hashing gigabytes again.
    """

    def __init__(self, cache_path: Path):
        self.cache_path = cache_path

    def sha256(self, dropped: DroppedFile) -> str:
        key = (str(dropped.path), *dropped.fingerprint)
        with self._connect() as conn:
            row = conn.execute(
                "select sha256 from hashes where path=? and size=? and mtime_ns=? and ctime_ns=?", key
            ).fetchone()
            if row:
                return row[0]
        digest = sha256_of(dropped.path)
        with self._connect() as conn:
            conn.execute("delete from hashes where path=?", key[:1])
            conn.execute("insert into hashes values (?, ?, ?, ?, ?)", (*key, digest))
        return digest

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.cache_path, timeout=30)
        try:
            with conn:  # commits on success
                conn.execute(
                    "create table if not exists hashes (path text primary key, size integer,"
                    " mtime_ns integer, ctime_ns integer, sha256 text)"
                )
                yield conn
        finally:
            conn.close()
