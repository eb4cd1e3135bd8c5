"""(f) SQL models: a full rebuild, one new 2-minute video (incremental), typical queries, peak memory.

    python benchmarks/sql_bench.py <home>    # measure one generated home in this fresh process

Each size is measured in a fresh interpreter, so its peak RSS is that of the builds and queries.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent)]

from video_assets.predictions.schema import CLASS_COUNT, DETECTIONS, FRAMES, LINE_COUNT, VIDEOS  # noqa: E402
from video_assets.settings import Settings  # noqa: E402
from video_assets.sql.assets import SQL_GROUP  # noqa: E402

DETECTIONS_PER_VIDEO = 50_000
BOXES_PER_FRAME = 2
FPS = 15.0
NEW_VIDEO_S = 120
NEW_VIDEOS = 3
FULL_REBUILDS = 3  # the median is reported: one build varies by a second from one to the next here
START = datetime(2026, 11, 1, tzinfo=UTC)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # a run prints every event otherwise
QUERIES = {
    "crossings per hour (model)": "select hour_utc, sum(crossings) from line_crossings_per_hour group by 1",
    "detections per class per hour (raw Parquet view)":
        "select class_name, date_trunc('hour', frame_ts) as h, count(*) from detections group by all",
}


def sql_scaling(work: Path, row_counts: tuple[int, ...]) -> dict:
    results = {}
    for rows in row_counts:
        # generated once per size and table layout: a schema change makes a new folder, never a stale read
        layout = hashlib.sha256(str([FRAMES, DETECTIONS, VIDEOS]).encode()).hexdigest()[:8]
        home = work / f"sql_{rows}_{layout}"
        settings = Settings(home=home)
        if not (settings.predictions_dir / "videos").exists():
            shutil.rmtree(home, ignore_errors=True)
            _write_predictions(settings, rows)
        results[str(rows)] = _measure_in_fresh_process(home)
    largest = results[str(row_counts[-1])]
    return {
        "f_by_rows": results,
        "f_largest_rows": row_counts[-1],
        "f_rebuild_s_at_largest": largest["rebuild_all_models_s"],
        "f_query_s_at_largest": max(largest["query_s"].values()),
    }


def _measure_in_fresh_process(home: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, str(home)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(BENCH.parent)})
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"sql_bench {home} failed:\n{out.stderr[-4000:]}")


def measure(home: Path) -> dict:
    """Full rebuilds from nothing, then one new 2-minute video at a time (incremental), then queries."""
    from video_assets.definitions import build_definitions

    settings = Settings(home=home)
    for table in ("detections", "frames", "videos"):
        for folder in (settings.predictions_dir / table).glob("video_id=new_*"):
            shutil.rmtree(folder)
    defs = build_definitions(settings)
    videos = len(list((settings.predictions_dir / "videos").iterdir()))

    def build(instance: dg.DagsterInstance) -> tuple[float, float]:
        """(wall s, CPU s of this process: Python and DuckDB's threads) for one run of every SQL model."""
        started, cpu = time.perf_counter(), _cpu_s()
        result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.groups(SQL_GROUP),
                                instance=instance, resources=defs.resources, run_config=QUIET)
        assert result.success
        return time.perf_counter() - started, _cpu_s() - cpu

    def add_video_and_build(n: int, instance: dg.DagsterInstance) -> tuple[float, float]:
        # lands in an hour other videos share, as a new file in a busy drop folder does
        _write_video(settings, f"new_{n}.mp4-{n:012x}", START + timedelta(hours=n % NEW_VIDEOS, minutes=20),
                     NEW_VIDEO_S * FPS, source=f"cam{n % 4}", rng=np.random.default_rng(100 + n))
        return build(instance)

    load = os.getloadavg()[0]
    with dg.DagsterInstance.ephemeral() as instance:
        full_runs = []
        for _ in range(FULL_REBUILDS):  # each from nothing, as a first build is
            for stale in (settings.warehouse_path, settings.warehouse_build_path):
                stale.unlink(missing_ok=True)
            full_runs.append(build(instance))
        full = sorted(full_runs)[len(full_runs) // 2]
        unchanged = build(instance)
        floor = _dagster_floor(defs, instance)
        new_video = [add_video_and_build(n, instance) for n in range(NEW_VIDEOS)]
    # The same on an instance kept on disk, as one machine keeps it (SQLite): Dagster's writes cost more there.
    with tempfile.TemporaryDirectory() as dagster_home, dg.DagsterInstance.local_temp(dagster_home) as instance:
        floor_on_disk = _dagster_floor(defs, instance)
        new_video_on_disk = [add_video_and_build(n, instance) for n in range(NEW_VIDEOS, 2 * NEW_VIDEOS)]
    warehouse = defs.resources["warehouse"]
    started = time.perf_counter()
    shutil.copyfile(settings.warehouse_path, settings.home / "copy.duckdb")
    copy_s = time.perf_counter() - started
    (settings.home / "copy.duckdb").unlink()
    timings = {}
    for name, sql in QUERIES.items():
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            with warehouse.read() as conn:
                conn.execute(sql).fetchall()
            runs.append(time.perf_counter() - started)
        timings[name] = round(min(runs), 3)
    median = sorted(new_video)[len(new_video) // 2]
    return {
        "videos": videos,
        "load_average": round(load, 1),
        "rebuild_all_models_s": round(full[0], 2),
        "rebuild_cpu_s": round(full[1], 2),
        "rebuild_runs_s": [round(wall, 2) for wall, _ in full_runs],
        "new_video_s": round(median[0], 2),
        "new_video_cpu_s": round(median[1], 2),
        "new_video_runs_s": [round(wall, 2) for wall, _ in new_video],
        "unchanged_s": round(unchanged[0], 2),
        "dagster_floor_s": round(floor, 2),
        "dagster_floor_on_disk_s": round(floor_on_disk, 2),
        "new_video_on_disk_s": round(sorted(new_video_on_disk)[len(new_video_on_disk) // 2][0], 2),
        "warehouse_mb": round(settings.warehouse_path.stat().st_size / 2**20, 1),
        "publish_copy_s": round(copy_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "query_s": timings,
    }


def _dagster_floor(defs: dg.Definitions, instance: dg.DagsterInstance) -> float:
    """The same run with a step that does nothing (same assets and checks): Dagster's own share."""
    graph = defs.resolve_asset_graph()
    keys = sorted(dg.AssetSelection.groups(SQL_GROUP).resolve(graph))
    checks = sorted(check for check in graph.asset_check_keys if check.asset_key in keys)

    @dg.multi_asset(specs=[dg.AssetSpec(key) for key in keys],
                    check_specs=[dg.AssetCheckSpec(c.name, asset=c.asset_key, blocking=True) for c in checks])
    def noop() -> Iterator[dg.MaterializeResult]:
        for key in keys:
            yield dg.MaterializeResult(asset_key=key, check_results=[
                dg.AssetCheckResult(asset_key=key, check_name=c.name, passed=True) for c in checks if c.asset_key == key])

    runs = []
    for _ in range(3):
        started = time.perf_counter()
        assert dg.materialize([noop], instance=instance, run_config=QUIET).success
        runs.append(time.perf_counter() - started)
    return sorted(runs)[1]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _write_predictions(settings: Settings, rows: int) -> None:
    """Synthetic tables in the real layout: one file per video, 2 boxes per frame, line and zone counts."""
    rng = np.random.default_rng(0)
    videos = max(1, rows // DETECTIONS_PER_VIDEO)
    frames = rows // videos // BOXES_PER_FRAME
    for v in range(videos):
        _write_video(settings, f"bench_{v:05d}.mp4-{v:012x}", START + timedelta(hours=v % 168), frames,
                     source=f"cam{v % 4}", rng=rng)


def _write_video(settings: Settings, video_id: str, recorded: datetime, frames: float, source: str,
                 rng: np.random.Generator) -> None:
    frames = int(frames)
    frame_idx = np.arange(frames, dtype=np.int64)
    offsets = frame_idx / FPS
    start_us = int(recorded.timestamp() * 1_000_000)
    frame_ts = pa.array(start_us + (frame_idx // int(FPS)) * 1_000_000).cast(pa.timestamp("us", tz="UTC"))  # 1 s ticks
    crossings = np.cumsum(rng.random(frames) < 0.01)
    common = {"video_id": _constant(video_id, frames), "source": _constant(source, frames),
              "frame_idx": frame_idx, "time_offset_s": offsets, "frame_ts": frame_ts}
    lineage = {"workflow_version": _constant("inline:bench", frames), "backend": _constant("self_hosted", frames)}
    outputs = [f'{{"line_count_in": {c}, "line_count_out": {c // 2}, "zone_occupancy": {z}}}'
               for c, z in zip(crossings, rng.integers(0, 3, frames), strict=True)]
    n = frames * BOXES_PER_FRAME
    every_box = np.repeat(np.arange(frames), BOXES_PER_FRAME)
    is_person = rng.random(n) < 0.7
    detections = {
        **{name: pc.take(column if isinstance(column, pa.Array) else pa.array(column), every_box)
           for name, column in common.items()},
        "class_name": pa.array(np.where(is_person, "person", "car")),
        "class_id": pa.array(rng.integers(0, 2, n, dtype=np.int32)),
        "confidence": pa.array(rng.random(n, dtype=np.float32)),
        "x": pa.array(rng.random(n, dtype=np.float32) * 1280), "y": pa.array(rng.random(n, dtype=np.float32) * 720),
        "width": pa.array(np.full(n, 40, np.float32)), "height": pa.array(np.full(n, 80, np.float32)),
        "tracker_id": pa.array(frame_idx.repeat(BOXES_PER_FRAME) // 150 * 2 + np.tile([0, 1], frames)),
        "workflow_version": _constant("inline:bench", n), "backend": _constant("self_hosted", n),
    }
    _write(settings, "frames", video_id, pa.table({
        **common, "detection_count": np.full(frames, BOXES_PER_FRAME, np.int32), "outputs": outputs, **lineage,
        "line_counts": _line_counts({"line_count_in": crossings, "line_count_out": crossings // 2}),
        "class_counts": _class_counts(is_person.reshape(frames, BOXES_PER_FRAME)),
        # each frame's two boxes have distinct tracker ids, ascending
        "tracker_ids": pa.ListArray.from_arrays(pa.array(np.arange(frames + 1, dtype=np.int32) * BOXES_PER_FRAME),
                                                detections["tracker_id"]),
    }, schema=FRAMES))
    _write(settings, "detections", video_id, pa.table(detections, schema=DETECTIONS))
    _write(settings, "videos", video_id, pa.Table.from_pylist([{
        "video_id": video_id, "source": source, "file": f"{video_id}.mp4", "sha256": "0" * 64, "bytes": 1,
        "duration_s": frames / FPS, "fps": FPS, "width": 1280, "height": 720, "rotation": 0, "codec": "h264",
        "recorded_at": recorded, "frames_expected": frames, "frames_processed": frames, "processed_at": recorded,
        "workflow_version": "inline:bench", "backend": "self_hosted",
    }], schema=VIDEOS))


def _line_counts(totals: dict[str, np.ndarray]) -> pa.Array:
    """The frames' line_counts, as the writers count them (storage.LineCounters): each frame's total minus
    the previous frame's (the generated totals never fall)."""
    names = sorted(totals)
    frames = len(totals[names[0]])
    interleaved = {  # frame by frame, counter by counter
        "counter": np.tile(names, frames),
        "total": np.stack([totals[n] for n in names], axis=1).ravel(),
        "crossings": np.stack([np.diff(totals[n], prepend=0) for n in names], axis=1).ravel(),
    }
    offsets = pa.array(np.arange(frames + 1, dtype=np.int32) * len(names))
    counts = pa.StructArray.from_arrays([pa.array(v) for v in interleaved.values()], fields=list(LINE_COUNT))
    return pa.ListArray.from_arrays(offsets, counts)


def _class_counts(is_person: np.ndarray) -> pa.Array:
    """The frames' class_counts, as the writers count them (storage.frame_rows): per frame, its boxes per class,
    by class name (car before person). `is_person`: one row per frame, one column per box."""
    people = is_person.sum(axis=1)
    classes = [(people < is_person.shape[1], "car", is_person.shape[1] - people), (people > 0, "person", people)]
    per_frame = np.stack([present for present, _, _ in classes], axis=1)  # frame x class: any box of it?
    names = np.tile([name for _, name, _ in classes], len(people))[per_frame.ravel()]
    boxes = np.stack([count for _, _, count in classes], axis=1).ravel()[per_frame.ravel()]
    offsets = np.concatenate([[0], np.cumsum(per_frame.sum(axis=1))]).astype(np.int32)
    counts = pa.StructArray.from_arrays([pa.array(names), pa.array(boxes.astype(np.int32))], fields=list(CLASS_COUNT))
    return pa.ListArray.from_arrays(pa.array(offsets), counts)


def _constant(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), [value]).cast(pa.string())


def _write(settings: Settings, table: str, video_id: str, data: pa.Table) -> None:
    path = settings.predictions_dir / table / f"video_id={video_id}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(".part-0.parquet.bench.tmp")
    pq.write_table(data, temp, compression="zstd")
    os.replace(temp, path)


if __name__ == "__main__":
    print("RESULT " + json.dumps(measure(Path(sys.argv[1]))), flush=True)
