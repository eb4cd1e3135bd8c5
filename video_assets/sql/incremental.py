"""Incremental models: a build replaces only the partitions whose videos changed since the last one.

A partition is the rows of one video (`partition_by: video_id`) or of one time bucket
(`partition_by: {field: hour_utc, granularity: hour}`: the rows aggregated from the frames of that
hour, of every video). A build
1. fingerprints every video's Parquet files (changes.py) and compares them with what this model
   recorded at its last build (`_incremental.built`): new, re-run and deleted videos have changed;
2. picks the partitions to replace: the changed videos, or every bucket their frames span now or
   spanned at the last build; with `lookback: n`, also the buckets of the n hours of the same camera
   after each changed camera hour (their window reached back into it);
3. reads only the videos those partitions need (for a bucket: every video whose frames overlap it,
   plus the n hours of the same camera before each camera hour), deletes the partitions and inserts them
   recomputed, in the caller's transaction, with the record of what it built.
This equals a full rebuild when a time-partitioned model's field is the UTC bucket of frame_ts
(time_bucket(interval 1 <granularity>, frame_ts), or date_trunc in UTC) of the frames or detections
each row aggregates, and, with `lookback`, when a window reaches back no further than the previous
hour of the same camera (a camera's hours do not overlap, and each carries the counters its next hour
continues; a file's window stays within the file).
A full refresh (asked for, the first build, a changed SQL or config, a lost table) rebuilds the table
from all the Parquet, as a table model is built, and records every video.
Data tests over sources alone read the same videos as the build (the rest passed when they were
built); if any test fails, the changed videos are recorded unchecked and taken again by the next
build, so a failing test keeps failing until the data is fixed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from video_assets.predictions.store import PredictionStore
from video_assets.sql.changes import BUILT, DEFINITIONS, VIDEOS, files_of, take_snapshot
from video_assets.sql.models import Partitioning, SqlModel


@dataclass(frozen=True)
class IncrementalBuild:
    full_refresh: str | None  # why the whole table was rebuilt; None for an incremental build
    changed: int  # videos new, re-run, deleted (or unchecked) since the last build
    partitions: int  # partitions replaced
    videos_read: int
    source_relation: Callable[[str], str]  # what each source read in this build (the data tests read the same)

    def metadata(self) -> dict[str, Any]:
        return {
            "build": f"full refresh: {self.full_refresh}" if self.full_refresh else "incremental",
            "videos_changed": self.changed,
            "partitions_replaced": self.partitions,
            "videos_read": self.videos_read,
        }


def build(
    conn: Any, model: SqlModel, store: PredictionStore, full_refresh: bool, snapshot_key: str | None = None
) -> IncrementalBuild:
    """Bring the model's table up to date with the Parquet; call `record` once its data tests ran."""
    take_snapshot(conn, store.data(), snapshot_key)
    partitioning = model.partitioning
    assert partitioning is not None
    reason = _full_refresh_reason(conn, model, full_refresh)
    if reason:
        conn.execute(f'CREATE OR REPLACE TABLE "{model.name}" AS {render(model, store.relation_sql)}')
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE _changed AS SELECT video_id FROM {VIDEOS} UNION "
            f"SELECT video_id FROM {BUILT} WHERE model = ?",
            [model.name],
        )
        partitions = f'(SELECT DISTINCT {_partition(partitioning)} FROM "{model.name}")'
        videos = _count(conn, VIDEOS)
        return IncrementalBuild(reason, _count(conn, "_changed"), _count(conn, partitions), videos, store.relation_sql)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE _old AS SELECT * FROM {BUILT} WHERE model = ?", [model.name])
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE _changed AS
        SELECT video_id FROM {VIDEOS} AS n FULL JOIN _old AS o USING (video_id)
        WHERE n.fingerprint IS DISTINCT FROM o.fingerprint OR NOT coalesce(o.checked, true)"""
    )
    changed = _count(conn, "_changed")
    if not changed:
        return IncrementalBuild(None, 0, 0, 0, lambda table: store.files_relation_sql(table, []))
    if partitioning.by_video:
        read, partitions = "_changed", "_changed"
    else:
        _plan_buckets(conn, partitioning)
        read, partitions = "_read", "_buckets"
    relation = _relation(conn, store, read)
    replaced = _count(conn, partitions)
    if replaced:
        where = f"{_partition(partitioning)} IN (SELECT * FROM {partitions})"
        conn.execute(f'DELETE FROM "{model.name}" WHERE {where}')
        conn.execute(f'INSERT INTO "{model.name}" SELECT * FROM ({render(model, relation)}) WHERE {where}')
    videos_read = _count(conn, read, f"video_id IN (SELECT video_id FROM {VIDEOS})")
    return IncrementalBuild(None, changed, replaced, videos_read, relation)


def _partition(partitioning: Partitioning) -> str:
    """The SQL naming a row's partition: its video, or its time bucket."""
    if partitioning.by_video:
        return f'"{partitioning.field}"'
    return f"date_trunc('{partitioning.granularity}', \"{partitioning.field}\")"


def record(conn: Any, model: SqlModel, build: IncrementalBuild, checks_passed: bool) -> None:
    """Remember what the table now holds: each changed video's fingerprint and span."""
    if not build.changed and not build.full_refresh:
        return
    conn.execute(f"DELETE FROM {BUILT} WHERE model = ? AND video_id IN (SELECT video_id FROM _changed)", [model.name])
    conn.execute(
        f"INSERT INTO {BUILT} SELECT ?, video_id, fingerprint, first_ts, last_ts, source, ? FROM {VIDEOS} "
        "WHERE video_id IN (SELECT video_id FROM _changed)",
        [model.name, checks_passed],
    )
    if build.full_refresh:
        conn.execute(f"DELETE FROM {DEFINITIONS} WHERE model = ?", [model.name])
        conn.execute(f"INSERT INTO {DEFINITIONS} VALUES (?, ?)", [model.name, definition(model)])


def render(model: SqlModel, source_relation: Callable[[str], str]) -> str:
    """The model's SELECT over these sources, with the views it reads inlined over the same sources."""
    sql = model.render(source_relation)
    if not model.views:
        return sql
    views = ", ".join(f'"{view.name}" AS ({view.render(source_relation)})' for view in model.views)
    return f"WITH {views} SELECT * FROM ({sql})"


def definition(model: SqlModel) -> str:
    """Changes whenever the table would: the SQL of the model and of the views it reads, and its partitioning."""
    parts = [
        model.sql,
        asdict(model.partitioning) if model.partitioning else None,
        [(v.name, v.sql) for v in model.views],
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _full_refresh_reason(conn: Any, model: SqlModel, requested: bool) -> str | None:
    if requested:
        return "requested"
    recorded = conn.execute(f"SELECT definition FROM {DEFINITIONS} WHERE model = ?", [model.name]).fetchone()
    if recorded is None:
        return "first build"
    if recorded[0] != definition(model):
        return "its SQL or config changed"
    exists = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?", [model.name]
    ).fetchone()[0]
    return None if exists else "its table was missing"


def _plan_buckets(conn: Any, partitioning: Partitioning) -> None:
    """Temp tables `_buckets` (the time buckets to replace) and `_read` (the videos they need)."""
    unit, lookback = partitioning.granularity, partitioning.lookback
    step = f"INTERVAL 1 {unit}"
    # camera hours in order, per camera (video_id <camera>@<hour>; a file's key has no @): with `lookback`,
    # a window runs on from one hour of a camera into the next
    for state, table in (("now", VIDEOS), ("old", "_old")):
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE _hours_{state} AS SELECT video_id, source, first_ts, last_ts, "
            f"row_number() OVER (PARTITION BY source ORDER BY first_ts, video_id) AS rank "
            f"FROM {table} WHERE first_ts IS NOT NULL AND video_id LIKE '%@%'"
        )
    # the spans of the changed videos, now and at the last build, and of the `lookback` hours after each
    followers = " UNION ALL ".join(
        f"SELECT a.first_ts, a.last_ts FROM _hours_{state} AS a JOIN _hours_{state} AS c "
        f"ON a.source = c.source AND a.rank BETWEEN c.rank + 1 AND c.rank + {lookback} "
        "WHERE c.video_id IN (SELECT video_id FROM _changed)"
        for state in ("now", "old")
    )
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE _buckets AS
        WITH spans AS (
            SELECT first_ts, last_ts FROM {VIDEOS} WHERE video_id IN (SELECT video_id FROM _changed)
            UNION ALL SELECT first_ts, last_ts FROM _old WHERE video_id IN (SELECT video_id FROM _changed)
            UNION ALL {followers}
        )
        SELECT DISTINCT unnest(generate_series(date_trunc('{unit}', first_ts), last_ts, {step})) AS bucket
        FROM spans WHERE first_ts IS NOT NULL"""
    )
    # every video with frames in a bucket, and the `lookback` hours of its camera before each
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE _read AS
        WITH overlapping AS (
            SELECT DISTINCT v.video_id FROM {VIDEOS} AS v
            JOIN _buckets AS b ON v.first_ts < b.bucket + {step} AND v.last_ts >= b.bucket
        )
        SELECT video_id FROM overlapping
        UNION SELECT p.video_id FROM _hours_now AS p JOIN _hours_now AS o
            ON p.source = o.source AND p.rank BETWEEN o.rank - {lookback} AND o.rank - 1
            WHERE o.video_id IN (SELECT video_id FROM overlapping)"""
    )


def _relation(conn: Any, store: PredictionStore, videos_table: str) -> Callable[[str], str]:
    files = files_of(conn, videos_table)
    return lambda table: store.files_relation_sql(table, files[table])


def _count(conn: Any, table: str, where: str = "true") -> int:
    return conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]
