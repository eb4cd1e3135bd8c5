"""What the Parquet holds now, video by video, so a build can tell what changed since the last one.

Writers never rewrite a file in place: they write a hidden temporary file beside it and rename it
over the old one (storage.Staging), a deleted video loses its folders, and a camera hour is
republished every few minutes the same way. So a video's fingerprint is the path, inode, size and
mtime of each of its files, in every table; and a folder whose inode and mtime are those recorded at
the last build still holds the same files (renaming into a folder changes its mtime), so only
changed folders are listed again. Each file's time span (first and last `frame_ts`) and source
are read once and recorded with it in the warehouse (`_incremental.files`).

In an object store (s3://, many machines) there are no inodes, folders or renames: one listing per
table prefix gives every object's size, LastModified and ETag (which changes whenever the object is
replaced, even within the same second). There a file's `ino` is a hash of its ETag, and a folder's
`folder_ino` a hash of its whole listing: a video folder whose listing is the one recorded is
unchanged, and no settling delay is needed.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from video_assets.predictions.schema import CAMERA_TABLES, DERIVED_TABLES, TABLES
from video_assets.storage import LocalStore, ObjectStore, Store

STATE_SCHEMA = "_incremental"
FILES = f"{STATE_SCHEMA}.files"  # every committed Parquet file, its video, span and source
VIDEOS = f"{STATE_SCHEMA}.videos"  # every video now: the fingerprint of its files, its span and source
SNAPSHOT = f"{STATE_SCHEMA}.snapshot"  # the key of the last look at the files
PARQUET_TABLES = (*TABLES, *DERIVED_TABLES, *CAMERA_TABLES)  # one folder per video in each
TIMED_TABLES = ("detections", "frames")  # their frame_ts gives a video its time span
# A folder changed this recently may change again within the same tick of the filesystem clock
# without its mtime moving: it is listed again at each build until its mtime is older than this.
SETTLED_NS = 2_000_000_000
BUILT = f"{STATE_SCHEMA}.built"  # per model: each video's fingerprint and span when the model was last built
DEFINITIONS = f"{STATE_SCHEMA}.models"  # per model: the definition its table was last fully built from
_STATE_TABLES = {
    FILES: "tbl VARCHAR, video_id VARCHAR, folder VARCHAR, folder_ino UBIGINT, folder_mtime_ns BIGINT, path VARCHAR, "
    "ino UBIGINT, size BIGINT, mtime_ns BIGINT, first_ts TIMESTAMPTZ, last_ts TIMESTAMPTZ, source VARCHAR",
    VIDEOS: "video_id VARCHAR, fingerprint VARCHAR, first_ts TIMESTAMPTZ, last_ts TIMESTAMPTZ, source VARCHAR",
    SNAPSHOT: "key VARCHAR",
    BUILT: "model VARCHAR, video_id VARCHAR, fingerprint VARCHAR, first_ts TIMESTAMPTZ, last_ts TIMESTAMPTZ, "
    "source VARCHAR, checked BOOLEAN",
    DEFINITIONS: "model VARCHAR, definition VARCHAR",
}
_VIDEOS_SQL = f"""
    SELECT video_id,
           md5(string_agg(path || ':' || ino || ':' || size || ':' || mtime_ns, '|' ORDER BY path)) AS fingerprint,
           min(first_ts) AS first_ts, max(last_ts) AS last_ts, min(source) AS source
    FROM {FILES} GROUP BY video_id"""
_VIDEO_FOLDER = "video_id="
_SCANNED = pa.schema(
    [
        ("tbl", pa.string()),
        ("video_id", pa.string()),
        ("folder", pa.string()),
        ("folder_ino", pa.uint64()),
        ("folder_mtime_ns", pa.int64()),
        ("path", pa.string()),
        ("ino", pa.uint64()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
    ]
)


def ensure_state(conn: Any) -> None:
    """The `_incremental` tables, created once (one query when they exist)."""
    existing = {
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?", [STATE_SCHEMA]
        ).fetchall()
    }
    if existing >= {name.split(".")[1] for name in _STATE_TABLES}:
        return
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    for name, columns in _STATE_TABLES.items():
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
    if "videos" not in existing:  # derived from the files: derive it from those already recorded
        conn.execute(f"CREATE OR REPLACE TABLE {VIDEOS} AS {_VIDEOS_SQL}")


def take_snapshot(conn: Any, data: Store, key: str | None = None) -> None:
    """Bring `_incremental.files` (tbl, video_id, path, ...) and `_incremental.videos` (video_id,
    fingerprint, first_ts, last_ts, source) up to date with the files. With a `key` (a run's id), the
    files are looked at once for every build with that key: the models of one run are built as of
    the same moment. `data` is the PredictionStore's store (a local folder or an object-store prefix); the
    connection must have its filesystem registered (the spans of new files are read from them)."""
    ensure_state(conn)
    if key is not None and conn.execute(f"SELECT key FROM {SNAPSHOT}").fetchone() == (key,):
        return
    _look(conn, data)
    if key is not None:
        conn.execute(f"DELETE FROM {SNAPSHOT}")
        conn.execute(f"INSERT INTO {SNAPSHOT} VALUES (?)", [key])


def _look(conn: Any, data: Store) -> None:
    """List what changed since the files were last recorded, and record it."""
    known = {
        folder: (ino, mtime)
        for folder, ino, mtime in conn.execute(
            f"SELECT DISTINCT folder, folder_ino, folder_mtime_ns FROM {FILES}"
        ).fetchall()
    }
    if isinstance(data, ObjectStore):
        unchanged, listed = _scan_objects(data, known)
    elif isinstance(data, LocalStore):
        unchanged, listed = _scan(data.root, known)
    else:
        raise TypeError(f"cannot list the files of {type(data).__name__}")
    if listed.num_rows or len(unchanged) < len(known):
        _record_files(conn, unchanged, listed)


def _record_files(conn: Any, unchanged: list[str], listed: pa.Table) -> None:
    """Keep the rows of unchanged folders, replace the others by what was listed (spans read for new files)."""
    conn.register("_unchanged", pa.table({"folder": pa.array(unchanged, pa.string())}))
    conn.register("_listed", listed)
    unseen = [
        row[0]
        for row in conn.execute(
            f"SELECT l.path FROM _listed AS l ANTI JOIN {FILES} AS f USING (path, ino, size, mtime_ns) "
            f"WHERE l.tbl IN {TIMED_TABLES}"
        ).fetchall()
    ]
    conn.execute(_spans_sql(unseen))
    conn.execute(
        f"""CREATE OR REPLACE TABLE {FILES} AS
        SELECT * FROM {FILES} WHERE folder IN (SELECT folder FROM _unchanged)
        UNION ALL BY NAME
        SELECT l.*, coalesce(n.first_ts, f.first_ts) AS first_ts, coalesce(n.last_ts, f.last_ts) AS last_ts,
               coalesce(n.source, f.source) AS source
        FROM _listed AS l
        LEFT JOIN {FILES} AS f USING (path, ino, size, mtime_ns)
        LEFT JOIN _spans AS n USING (path)"""
    )
    conn.unregister("_unchanged")
    conn.unregister("_listed")
    conn.execute(f"CREATE OR REPLACE TABLE {VIDEOS} AS {_VIDEOS_SQL}")


def _scan(root: Path, known: dict[str, tuple[int, int]]) -> tuple[list[str], pa.Table]:
    """The video folders that still hold what was recorded, and the files of every other folder."""
    settled_before = time.time_ns() - SETTLED_NS
    unchanged: list[str] = []
    rows: dict[str, list[Any]] = {name: [] for name in _SCANNED.names}
    for table in PARQUET_TABLES:
        for folder in _entries(root / table):
            if not folder.name.startswith(_VIDEO_FOLDER):
                continue
            try:
                stat = folder.stat()
            except FileNotFoundError:
                continue  # deleted while scanning: the next build sees it gone
            if known.get(folder.path) == (stat.st_ino, stat.st_mtime_ns):
                unchanged.append(folder.path)
                continue
            # a folder changed moments ago is recorded without its mtime, so that it is listed again next time
            mtime = stat.st_mtime_ns if stat.st_mtime_ns < settled_before else None
            video = (table, folder.name[len(_VIDEO_FOLDER) :], folder.path, stat.st_ino, mtime)
            for file in _entries(Path(folder.path)):
                if file.name.startswith(".") or not file.name.endswith(".parquet"):
                    continue  # hidden: a temporary file not yet published
                try:
                    st = file.stat()
                except FileNotFoundError:
                    continue
                for name, value in zip(
                    _SCANNED.names, (*video, file.path, st.st_ino, st.st_size, st.st_mtime_ns), strict=True
                ):
                    rows[name].append(value)
    return unchanged, pa.table(rows, schema=_SCANNED)


def _scan_objects(data: ObjectStore, known: dict[str, tuple[int, int]]) -> tuple[list[str], pa.Table]:
    """`_scan` for an object store: one listing per table prefix (never one request per video)."""
    unchanged: list[str] = []
    rows: dict[str, list[Any]] = {name: [] for name in _SCANNED.names}
    for table in PARQUET_TABLES:
        prefix = data.uri(table).removeprefix("s3://")
        try:
            listing = data.fs.find(prefix, detail=True)
        except FileNotFoundError:
            continue
        folders: dict[str, list[tuple[str, int, int, int]]] = {}
        for key, info in listing.items():
            name = key.rsplit("/", 1)[-1]
            folder = key[: -len(name) - 1]
            if info.get("type") == "directory" or name.startswith(".") or not name.endswith(".parquet"):
                continue  # hidden: not a published table file
            if folder.rsplit("/", 1)[-1].startswith(_VIDEO_FOLDER) and folder.rsplit("/", 1)[0] == prefix:
                folders.setdefault(folder, []).append(
                    (f"s3://{key}", _etag_hash(info), int(info["size"]), _mtime_ns(info))
                )
        for folder, files in sorted(folders.items()):
            files.sort()
            uri = f"s3://{folder}"
            signature = _hash("|".join(":".join(map(str, file)) for file in files))
            mtime = max(file[3] for file in files)
            if known.get(uri) == (signature, mtime):
                unchanged.append(uri)
                continue
            video = (table, folder.rsplit("/", 1)[-1][len(_VIDEO_FOLDER) :], uri, signature, mtime)
            for file in files:
                for name, value in zip(_SCANNED.names, (*video, *file), strict=True):
                    rows[name].append(value)
    return unchanged, pa.table(rows, schema=_SCANNED)


def _etag_hash(info: dict[str, Any]) -> int:
    """What changes when an object is replaced: its ETag (the md5 of its bytes, or of its parts')."""
    return _hash(str(info.get("ETag") or info.get("etag") or f"{info['size']}:{_mtime_ns(info)}"))


def _mtime_ns(info: dict[str, Any]) -> int:
    modified = info.get("LastModified") or info.get("mtime")
    return round(modified.timestamp() * 1_000_000) * 1000 if modified is not None else 0


def _hash(text: str) -> int:
    """64 bits, to fit the `ino` columns (UBIGINT) an inode fills locally."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


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
    files: dict[str, list[str]] = {table: [] for table in PARQUET_TABLES}
    for table, path in conn.execute(
        f"SELECT tbl, path FROM {FILES} WHERE video_id IN (SELECT video_id FROM {videos_table}) ORDER BY path"
    ).fetchall():
        files[table].append(path)
    return files
