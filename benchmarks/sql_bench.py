"""(f) SQL model rebuild time and typical queries over 1 M and 10 M detection rows."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from video_assets.definitions import build_definitions
from video_assets.predictions.schema import DETECTIONS, FRAMES, VIDEOS
from video_assets.settings import Settings

DETECTIONS_PER_VIDEO = 50_000
BOXES_PER_FRAME = 2
FPS = 15.0
QUERIES = {
    "crossings per hour (model)": "select hour_utc, sum(crossings) from line_crossings_per_hour group by 1",
    "detections per class per hour (raw Parquet view)":
        "select class_name, date_trunc('hour', frame_ts) as h, count(*) from detections group by all",
}


def sql_scaling(work: Path, row_counts: tuple[int, ...]) -> dict:
    results = {}
    for rows in row_counts:
        home = work / f"sql_{rows}"
        settings = Settings(home=home)
        if not (settings.predictions_dir / "videos").exists():
            shutil.rmtree(home, ignore_errors=True)
            _write_predictions(settings, rows)
        defs = build_definitions(settings)
        with dg.DagsterInstance.ephemeral() as instance:
            started = time.perf_counter()
            result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.groups("sql"), instance=instance,
                                    resources=defs.resources)
            rebuild = time.perf_counter() - started
            assert result.success
        warehouse = defs.resources["warehouse"]
        timings = {}
        for name, sql in QUERIES.items():
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                with warehouse.read() as conn:
                    conn.execute(sql).fetchall()
                runs.append(time.perf_counter() - started)
            timings[name] = round(min(runs), 3)
        results[str(rows)] = {"rebuild_all_models_s": round(rebuild, 2), "query_s": timings}
    largest = results[str(row_counts[-1])]
    return {"f_by_rows": results, "f_largest_rows": row_counts[-1],
            "f_rebuild_s_at_largest": largest["rebuild_all_models_s"],
            "f_query_s_at_largest": max(largest["query_s"].values())}


def _write_predictions(settings: Settings, rows: int) -> None:
    """Synthetic tables in the real layout: one file per video, 2 boxes per frame, line and zone counts."""
    rng = np.random.default_rng(0)
    videos = max(1, rows // DETECTIONS_PER_VIDEO)
    per_video = rows // videos
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    for v in range(videos):
        video_id = f"bench_{v:04d}.mp4-{v:012x}"
        frames = per_video // BOXES_PER_FRAME
        recorded = start + timedelta(hours=v % 168)
        frame_idx = np.arange(frames, dtype=np.int64)
        offsets = frame_idx / FPS
        ts = pa.array([recorded + timedelta(seconds=float(s)) for s in offsets[:: int(FPS)]], type=pa.timestamp("us", tz="UTC"))
        frame_ts = pa.compute.add(pa.array(np.repeat(ts.cast(pa.int64()).to_numpy(), int(FPS))[:frames]).cast(pa.timestamp("us", tz="UTC")), pa.scalar(0, pa.duration("us")))
        source = f"cam{v % 4}"
        crossings = np.cumsum(rng.random(frames) < 0.01)
        common = {"video_id": pa.array([video_id] * frames), "source": pa.array([source] * frames),
                  "frame_idx": frame_idx, "time_offset_s": offsets, "frame_ts": frame_ts}
        lineage = {"workflow_version": pa.array(["inline:bench"] * frames), "backend": pa.array(["self_hosted"] * frames)}
        outputs = [f'{{"line_count_in": {c}, "line_count_out": {c // 2}, "zone_occupancy": {z}}}'
                   for c, z in zip(crossings, rng.integers(0, 3, frames))]
        _write(settings, "frames", video_id, pa.table({**common, "detection_count": np.full(frames, BOXES_PER_FRAME, np.int32),
                                                      "outputs": outputs, **lineage}, schema=FRAMES))
        repeat = lambda col: pa.array(np.repeat(np.asarray(col), BOXES_PER_FRAME))  # noqa: E731
        n = frames * BOXES_PER_FRAME
        detections = {
            "video_id": pa.array([video_id] * n), "source": pa.array([source] * n),
            "frame_idx": repeat(frame_idx), "time_offset_s": repeat(offsets),
            "frame_ts": pa.array(np.repeat(frame_ts.cast(pa.int64()).to_numpy(), BOXES_PER_FRAME)).cast(pa.timestamp("us", tz="UTC")),
            "class_name": pa.array(np.where(rng.random(n) < 0.7, "person", "car")),
            "class_id": pa.array(rng.integers(0, 2, n, dtype=np.int32)),
            "confidence": pa.array(rng.random(n, dtype=np.float32)),
            "x": pa.array(rng.random(n, dtype=np.float32) * 1280), "y": pa.array(rng.random(n, dtype=np.float32) * 720),
            "width": pa.array(np.full(n, 40, np.float32)), "height": pa.array(np.full(n, 80, np.float32)),
            "tracker_id": pa.array(frame_idx.repeat(BOXES_PER_FRAME) // 150 * 2 + np.tile([0, 1], frames)),
            "workflow_version": pa.array(["inline:bench"] * n), "backend": pa.array(["self_hosted"] * n),
        }
        _write(settings, "detections", video_id, pa.table(detections, schema=DETECTIONS))
        _write(settings, "videos", video_id, pa.Table.from_pylist([{
            "video_id": video_id, "source": source, "file": f"{video_id}.mp4", "sha256": "0" * 64, "bytes": 1,
            "duration_s": frames / FPS, "fps": FPS, "width": 1280, "height": 720, "rotation": 0, "codec": "h264",
            "recorded_at": recorded, "frames_expected": frames, "frames_processed": frames, "processed_at": recorded,
            "workflow_version": "inline:bench", "backend": "self_hosted",
        }], schema=VIDEOS))


def _write(settings: Settings, table: str, video_id: str, data: pa.Table) -> None:
    path = settings.predictions_dir / table / f"video_id={video_id}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(data, path, compression="zstd")
