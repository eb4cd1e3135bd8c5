"""SQL models built on a real instance into a real DuckDB warehouse, and the Parquet they are built from:
videos and camera hours written as the writers write them, and every model built as the assets build it.

Test modules reach these helpers through fixtures (they never import each other); a test's subprocess
imports them from this file.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Callable

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from video_assets.predictions.schema import CAMERA_GAPS, CAMERA_SEGMENTS, DETECTIONS, FRAMES, VIDEOS
from video_assets.predictions.store import PredictionStore
from video_assets.sql.assets import build_model
from video_assets.sql.incremental import render
from video_assets.sql.warehouse import Warehouse
from video_assets.storage import LineCounters, frame_tallies


@pytest.fixture
def build_sql(instance) -> Callable[..., dg.ExecuteInProcessResult]:
    """Materialize the named models of `defs` (every model when none is named) in one run; failures are returned."""

    def build(defs: dg.Definitions, *names: str) -> dg.ExecuteInProcessResult:
        selection = dg.AssetSelection.assets(*names) if names else dg.AssetSelection.groups("sql")
        return dg.materialize(
            list(defs.assets), selection=selection, instance=instance, resources=defs.resources, raise_on_error=False
        )

    return build


START = datetime(2026, 11, 26, 6, tzinfo=UTC)
SCHEMAS = {"detections": DETECTIONS, "frames": FRAMES, "videos": VIDEOS,
           "camera_segments": CAMERA_SEGMENTS, "camera_gaps": CAMERA_GAPS}


class Videos:
    """Writes and deletes videos and camera hours as the writers do: whole files renamed into place."""

    START = START

    def __init__(self, root: Path, rng: random.Random):
        self.root, self.rng = root, rng
        self.files: list[str] = []
        self.hours: dict[str, dict[int, int]] = {"gate": {}, "lobby": {}}  # camera -> hour index -> frames

    def write(self, video_id: str, tables: dict[str, list[dict]]) -> None:
        for table, rows in tables.items():
            final = self.root / table / f"video_id={video_id}" / "part-0.parquet"
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = final.with_name(".part-0.parquet.test.tmp")
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[table]), temp)
            os.replace(temp, final)

    def delete(self, video_id: str) -> None:
        for table in SCHEMAS:
            shutil.rmtree(self.root / table / f"video_id={video_id}", ignore_errors=True)

    def file_video(self, video_id: str) -> None:
        """A file of 5-80 frames at 0.05-2 fps starting anywhere in six hours: it may span hours."""
        rng = self.rng
        fps = rng.choice([0.05, 0.2, 2.0])
        start = START + timedelta(seconds=rng.randrange(6 * 3600))
        frames = rng.randrange(5, 80)
        source = rng.choice(["inbox", "dock"])
        # Half the files carry line_counts, class_counts and tracker_ids as the writers write them; the others
        # (and camera hours) are as files written before those columns existed, which the models count themselves.
        counted = zlib.crc32(video_id.encode()) % 2 == 0
        self.write(video_id, self.tables(video_id, source, start, fps, frames, total=0, counted=counted))

    def camera_hour(self, camera: str, hour: int, frames: int) -> None:
        """A camera hour; its counters go on from the previous hour's (or restart, as with a new worker)."""
        start = START + timedelta(hours=hour)
        video_id = f"{camera}@{start:%Y-%m-%dT%H}"
        earlier = [h for h in self.hours[camera] if h < hour]
        total = 0 if not earlier or self.rng.random() < 0.2 else 10 * max(earlier) + self.rng.randrange(5)
        tables = self.tables(video_id, camera, start + timedelta(seconds=self.rng.randrange(60)), 0.5, frames, total)
        segments, gaps = [], []
        for i, chunk in enumerate((tables["frames"][: frames // 2], tables["frames"][frames // 2 :])):
            if chunk:
                segments.append({
                    "video_id": video_id, "camera": camera, "segment": f"s{i}", "window_start": start,
                    "opened_at": chunk[0]["frame_ts"], "committed_at": chunk[-1]["frame_ts"],
                    "frame_idx_start": chunk[0]["frame_idx"], "frames_processed": len(chunk),
                    "frames_dropped": self.rng.randrange(3), "first_frame_ts": chunk[0]["frame_ts"],
                    "last_frame_ts": chunk[-1]["frame_ts"], "reconnects": self.rng.randrange(2), "source_fps": 15.0,
                    "width": 640, "height": 360, "workflow_version": "inline:x", "backend": "self_hosted",
                })
        if frames > 4 and self.rng.random() < 0.5:
            gap_end = tables["frames"][frames // 2]["frame_ts"]
            gaps.append({"video_id": video_id, "camera": camera, "gap_start": gap_end - timedelta(seconds=1.5),
                         "gap_end": gap_end, "duration_s": 1.5, "cause": "stall", "reconnect_attempts": 1})
        self.write(video_id, {**tables, "camera_segments": segments, "camera_gaps": gaps})
        self.hours[camera][hour] = frames

    def tables(
        self, video_id: str, source: str, start: datetime, fps: float, frames: int, total: int, counted: bool = False
    ) -> dict:
        rng = self.rng
        counters = LineCounters() if counted else None
        common = {"video_id": video_id, "source": source, "workflow_version": "inline:x", "backend": "self_hosted"}
        frame_rows, detection_rows = [], []
        for i in range(frames):
            at = {**common, "frame_idx": i, "time_offset_s": i / fps, "frame_ts": start + timedelta(seconds=i / fps)}
            total += rng.random() < 0.3
            boxes = rng.randrange(3)
            for _ in range(boxes):
                detection_rows.append({
                    **at, "class_name": rng.choice(["person", "car"]), "class_id": 0, "confidence": 0.9,
                    "x": 1.0, "y": 2.0, "width": 3.0, "height": 4.0,
                    "tracker_id": rng.choice([None, 1, 2, 3, 4]),
                })
            outputs = {"line_count_in": total, "line_count_out": total // 2, "zone_occupancy": rng.randrange(3)}
            frame_boxes = detection_rows[len(detection_rows) - boxes:]
            frame_rows.append({**at, "detection_count": boxes, "outputs": json.dumps(outputs),
                               "line_counts": counters.step(outputs) if counters else None,
                               **(frame_tallies([(b["class_name"], b["tracker_id"]) for b in frame_boxes]) if counted else {})})
        video = {
            **common, "file": f"{video_id}.mp4", "sha256": "0" * 64, "bytes": 1, "duration_s": frames / fps,
            "fps": fps, "width": 64, "height": 64, "rotation": 0, "codec": "h264", "recorded_at": start, "frames_expected": frames,
            "frames_processed": frames, "processed_at": datetime.now(UTC),
        }
        return {"detections": detection_rows, "frames": frame_rows, "videos": [video]}

    def random_step(self, n: int) -> str:
        """One change, as the drop folders, re-runs, deletions and camera windows make them."""
        rng = self.rng
        choice = rng.random()
        if choice < 0.3 or not self.files:
            video_id = f"file{n:03d}.mp4-{n:012x}"
            self.file_video(video_id)
            self.files.append(video_id)
            return f"add {video_id}"
        if choice < 0.45:
            video_id = rng.choice(self.files)
            self.file_video(video_id)
            return f"re-run {video_id}"
        if choice < 0.55:
            video_id = self.files.pop(rng.randrange(len(self.files)))
            self.delete(video_id)
            return f"delete {video_id}"
        camera = rng.choice(list(self.hours))
        hours = self.hours[camera]
        if choice < 0.75 or not hours:
            hour = rng.randrange(6)  # out of order too: a late hour, an earlier hour filled in
            self.camera_hour(camera, hour, rng.randrange(3, 30))
            return f"publish {camera} hour {hour}"
        if choice < 0.9:
            hour = rng.choice(list(hours))
            self.camera_hour(camera, hour, hours[hour] + rng.randrange(1, 10))  # republished, longer
            return f"republish {camera} hour {hour}"
        hour = rng.choice(list(hours))
        del hours[hour]
        self.delete(f"{camera}@{START + timedelta(hours=hour):%Y-%m-%dT%H}")
        return f"delete {camera} hour {hour}"


def rows(conn: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return sorted(conn.execute(sql).fetchall(), key=lambda row: [(v is None, str(v)) for v in row])


def same_rows(got: list[tuple], expected: list[tuple]) -> bool:
    """Equal row for row; floating sums may differ in the last bits with the order rows were added in."""
    return len(got) == len(expected) and all(
        len(a) == len(b) and all(
            math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) if isinstance(x, float) and isinstance(y, float) else x == y
            for x, y in zip(a, b, strict=True)
        )
        for a, b in zip(got, expected, strict=True)
    )


def full_rebuild(store: PredictionStore, model) -> list[tuple]:
    """The model's SELECT over all the Parquet, in a fresh database: what a full rebuild gives."""
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        store.register(conn)
        return rows(conn, render(model, store.relation_sql))


def build_all(
    warehouse: Warehouse, store: PredictionStore, models, full_refresh: bool = False, run: str | None = None
) -> dict[str, dict]:
    """Every model in dependency order (views first, as the asset graph orders them), as the assets build them;
    with `run`, as the steps of one run do: one look at the Parquet for all."""
    metadata = {}
    with warehouse.build(store) as conn:
        for model in sorted(models, key=lambda m: m.materialized != "view"):
            metadata[model.name], results = build_model(conn, model, store, full_refresh, snapshot_key=run)
            assert all(r.passed for r in results), (model.name, [r.check_name for r in results if not r.passed])
    return metadata


@pytest.fixture(scope="session")
def parquet_videos() -> type[Videos]:
    """`Videos(root, rng)`: writes, re-runs and deletes videos and camera hours as real Parquet under `root`."""
    return Videos


@pytest.fixture(scope="session", name="build_all")
def build_all_fixture() -> Callable[..., dict[str, dict]]:
    """`build_all(warehouse, store, models, full_refresh=False, run=None)`: every model built as the assets build it."""
    return build_all


@pytest.fixture(scope="session", name="rows")
def rows_fixture() -> Callable[[duckdb.DuckDBPyConnection, str], list[tuple]]:
    """`rows(conn, sql)`: the query's rows, sorted."""
    return rows


@pytest.fixture(scope="session", name="same_rows")
def same_rows_fixture() -> Callable[[list[tuple], list[tuple]], bool]:
    return same_rows


@pytest.fixture(scope="session", name="full_rebuild")
def full_rebuild_fixture() -> Callable[..., list[tuple]]:
    """`full_rebuild(store, model)`: the model's SELECT over all the Parquet, sorted."""
    return full_rebuild
