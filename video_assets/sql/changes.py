"""What the Parquet holds now, video by video, so a build can tell what changed since the last one.

A video's files are replaced whole when it is re-run (a new inode, size or mtime under the same
name), its folders vanish when it is deleted, and a camera hour is republished every few minutes.
So a video's fingerprint is the path, inode, size and mtime of each of its files, in every table.
Each file's time span (first and last `frame_ts`) and source are read once and cached in the
warehouse (`_incremental.files`): a build reads only files it has not seen before.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from video_assets.predictions.schema import CAMERA_TABLES, TABLES

STATE_SCHEMA = "_incremental"
TIMED_TABLES = ("detections", "frames")  # their frame_ts gives a video its time span
_VIDEO_FOLDER = "video_id="
_SCAN = pa.schema(
    [
        ("tbl", pa.string()),
        ("video_id", pa.string()),
        ("path", pa.string()),
        ("ino", pa.uint64()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
    ]
)


def scan_files(root: Path) -> pa.Table:
    """Every committed Parquet file under `root` (hidden temporary files are not committed)."""
    rows: dict[str, list[Any]] = {name: [] for name in _SCAN.names}
    for table in (*TABLES, *CAMERA_TABLES):
        for folder in _entries(root / table):
            if not folder.name.startswith(_VIDEO_FOLDER):
                continue
            for file in _entries(Path(folder.path)):
                if file.name.startswith(".") or not file.name.endswith(".parquet"):
                    continue
                try:
                    stat = file.stat()
                except FileNotFoundError:
                    continue  # deleted while scanning: the next build sees it gone
                values = (table, folder.name[len(_VIDEO_FOLDER):], file.path, stat.st_ino, stat.st_size, stat.st_mtime_ns)
                for name, value in zip(_SCAN.names, values, strict=True):
                    rows[name].append(value)
    return pa.table(rows, schema=_SCAN)


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def take_snapshot(conn: Any, root: Path) -> None:
    """Temp tables `now_files` (tbl, video_id, path) and `now_videos` (video_id, fingerprint, first_ts,
    last_ts, source): every video as its files are now. Refreshes the cache of file spans."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.files (tbl VARCHAR, video_id VARCHAR, path VARCHAR, ino UBIGINT, "
        "size BIGINT, mtime_ns BIGINT, first_ts TIMESTAMPTZ, last_ts TIMESTAMPTZ, source VARCHAR)"
    )
    conn.register("_scan", scan_files(root))
    unseen = [
        row[0]
        for row in conn.execute(
            f"SELECT s.path FROM _scan AS s ANTI JOIN {STATE_SCHEMA}.files AS f USING (path, ino, size, mtime_ns) "
            f"WHERE s.tbl IN {TIMED_TABLES}"
        ).fetchall()
    ]
    conn.execute(_spans_sql(unseen))
    conn.execute(
        f"""CREATE OR REPLACE TABLE {STATE_SCHEMA}.files AS
        SELECT s.*, coalesce(n.first_ts, f.first_ts) AS first_ts, coalesce(n.last_ts, f.last_ts) AS last_ts,
               coalesce(n.source, f.source) AS source
        FROM _scan AS s
        LEFT JOIN {STATE_SCHEMA}.files AS f USING (path, ino, size, mtime_ns)
        LEFT JOIN _spans AS n USING (path)"""
    )
    conn.unregister("_scan")
    conn.execute(f"CREATE OR REPLACE TEMP TABLE now_files AS SELECT tbl, video_id, path FROM {STATE_SCHEMA}.files")
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE now_videos AS
        SELECT video_id,
               md5(string_agg(path || ':' || ino || ':' || size || ':' || mtime_ns, '|' ORDER BY path)) AS fingerprint,
               min(first_ts) AS first_ts, max(last_ts) AS last_ts, min(source) AS source
        FROM {STATE_SCHEMA}.files GROUP BY video_id"""
    )


def _spans_sql(paths: list[str]) -> str:
    """The first and last frame_ts and the source of each file (read from the files' data)."""
    if not paths:
        return "CREATE OR REPLACE TEMP TABLE _spans (path VARCHAR, first_ts TIMESTAMPTZ, last_ts TIMESTAMPTZ, source VARCHAR)"
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    return (
        "CREATE OR REPLACE TEMP TABLE _spans AS SELECT filename AS path, min(frame_ts) AS first_ts, "
        f"max(frame_ts) AS last_ts, min(source) AS source FROM read_parquet([{quoted}], filename = true, "
        "union_by_name = true, hive_partitioning = false) GROUP BY filename"
    )


def files_of(conn: Any, videos_table: str) -> dict[str, list[str]]:
    """The files of each table for the videos listed in the temp table `videos_table` (column video_id)."""
    files: dict[str, list[str]] = {table: [] for table in (*TABLES, *CAMERA_TABLES)}
    for table, path in conn.execute(
        f"SELECT tbl, path FROM now_files WHERE video_id IN (SELECT video_id FROM {videos_table}) ORDER BY path"
    ).fetchall():
        files[table].append(path)
    return files
