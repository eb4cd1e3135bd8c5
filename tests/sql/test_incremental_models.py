"""Incremental SQL models equal a full rebuild, row for row, whatever happens to the videos in between.

Random (seeded) sequences of file videos added, re-run and deleted and camera hours published,
republished and deleted are written as real Parquet in the real layout; after each step every model
is built incrementally in a real DuckDB warehouse and each incremental table is compared with the
model's SELECT run over all the Parquet.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from video_assets.definitions import build_definitions
from video_assets.predictions.schema import CAMERA_GAPS, CAMERA_SEGMENTS, DETECTIONS, FRAMES, VIDEOS
from video_assets.predictions.store import PredictionStore
from video_assets.settings import Settings
from video_assets.sql import changes
from video_assets.sql.assets import build_model, full_refresh_run_config
from video_assets.sql.defs import sql_variables
from video_assets.sql.incremental import render
from video_assets.sql.models import SqlModelError, load_models
from video_assets.sql.warehouse import Warehouse

START = datetime(2026, 11, 26, 6, tzinfo=UTC)
SCHEMAS = {"detections": DETECTIONS, "frames": FRAMES, "videos": VIDEOS,
           "camera_segments": CAMERA_SEGMENTS, "camera_gaps": CAMERA_GAPS}


class Videos:
    """Writes and deletes videos and camera hours as the writers do: whole files renamed into place."""

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
        self.write(video_id, self.tables(video_id, source, start, fps, frames, total=0))

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

    def tables(self, video_id: str, source: str, start: datetime, fps: float, frames: int, total: int) -> dict:
        rng = self.rng
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
            frame_rows.append({**at, "detection_count": boxes, "outputs": json.dumps(outputs)})
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
        return rows(conn, render(model, store.relation_sql))


def build_all(
    warehouse: Warehouse, store: PredictionStore, models, full_refresh: bool = False, run: str | None = None
) -> dict[str, dict]:
    """Every model in dependency order (views first, as the asset graph orders them), as the assets build them;
    with `run`, as the steps of one run do: one look at the Parquet for all."""
    metadata = {}
    with warehouse.build() as conn:
        for model in sorted(models, key=lambda m: m.materialized != "view"):
            metadata[model.name], results = build_model(conn, model, store, full_refresh, snapshot_key=run)
            assert all(r.passed for r in results), (model.name, [r.check_name for r in results if not r.passed])
    return metadata


@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)])
def test_random_changes_give_the_tables_a_full_rebuild_gives(tmp_path, monkeypatch, seed) -> None:
    # folders are trusted by their mtime at once (not 2 s later): the unchanged ones are not listed again
    monkeypatch.setattr(changes, "SETTLED_NS", 0)
    settings = Settings(home=tmp_path / "home")
    store = PredictionStore(root=str(settings.predictions_dir))
    warehouse = Warehouse(path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path))
    models = load_models(settings.sql_dir, sql_variables())
    incremental = [m for m in models if m.materialized == "incremental"]
    assert {m.name for m in incremental} >= {"video_summary", "line_crossings_per_hour", "camera_health"}
    videos = Videos(settings.predictions_dir, random.Random(seed))
    for n in range(3):
        videos.random_step(n)
    assert build_all(warehouse, store, models)["video_summary"]["build"] == "full refresh: first build"
    history, changed = [], 0
    for n in range(3, 28):
        steps = [videos.random_step(100 * n + k) for k in range(videos.rng.choice([1, 1, 2]))]
        history += steps
        if n % 9 == 0:
            Path(settings.warehouse_build_path).unlink()  # lost: the next build starts from the published copy
        if n == 20:
            Path(settings.warehouse_build_path).unlink()
            Path(settings.warehouse_path).unlink()  # both lost: everything is built again in full
        metadata = build_all(warehouse, store, models, run=f"run{n}" if n % 2 else None)
        expected = "full refresh: first build" if n == 20 else "incremental"
        assert {m["build"] for m in metadata.values() if "build" in m} == {expected}, history
        changed += metadata["video_summary"]["videos_changed"]
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as published:
            for model in incremental:
                got = rows(published, f'SELECT * FROM "{model.name}"')
                assert same_rows(got, full_rebuild(store, model)), (model.name, history)
    assert changed >= 20  # the builds were incremental, and had work to do


def test_an_incremental_build_reads_only_what_changed(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home")
    store = PredictionStore(root=str(settings.predictions_dir))
    warehouse = Warehouse(path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path))
    models = load_models(settings.sql_dir, sql_variables())
    videos = Videos(settings.predictions_dir, random.Random(7))
    for n in range(12):
        videos.file_video(f"file{n:03d}.mp4-{n:012x}")
    for hour in range(6):
        videos.camera_hour("gate", hour, 10)
    build_all(warehouse, store, models)
    quiet = build_all(warehouse, store, models)
    assert {m["videos_changed"] for name, m in quiet.items() if "videos_changed" in m} == {0}
    assert quiet["video_summary"]["videos_read"] == 0 and quiet["activity_per_source_hour"]["partitions_replaced"] == 0

    videos.camera_hour("gate", 3, 20)  # the hour republished, longer
    after = build_all(warehouse, store, models)
    assert after["video_summary"]["videos_changed"] == 1 and after["video_summary"]["videos_read"] == 1
    assert after["camera_health"]["partitions_replaced"] == 1
    # its hour, and the next one (whose counters go on from it), read with the hours before each
    assert after["line_crossings_per_hour"]["partitions_replaced"] == 2
    gate = {m: after[m]["videos_read"] for m in ("activity_per_source_hour", "line_crossings_per_hour")}
    assert gate["line_crossings_per_hour"] >= 3 and gate["line_crossings_per_hour"] < 18

    refreshed = build_all(warehouse, store, models, full_refresh=True)
    assert refreshed["video_summary"]["build"] == "full refresh: requested"
    assert refreshed["video_summary"]["videos_read"] == 18


def test_a_changed_model_definition_is_rebuilt_in_full(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home", sql_dir=tmp_path / "sql")
    settings.sql_dir.mkdir()
    (settings.sql_dir / "per_video.sql").write_text("select video_id, count(*) as frames from {{ source('frames') }} group by all")
    (settings.sql_dir / "per_video.yml").write_text("materialized: incremental\npartition_by: video_id\n")
    store = PredictionStore(root=str(settings.predictions_dir))
    warehouse = Warehouse(path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path))
    videos = Videos(settings.predictions_dir, random.Random(3))
    videos.file_video("a.mp4-000000000001")
    assert build_all(warehouse, store, load_models(settings.sql_dir))["per_video"]["build"] == "full refresh: first build"
    assert build_all(warehouse, store, load_models(settings.sql_dir))["per_video"]["build"] == "incremental"
    (settings.sql_dir / "per_video.sql").write_text(
        "select video_id, count(*) as frames, max(frame_idx) as last_frame from {{ source('frames') }} group by all"
    )
    rebuilt = build_all(warehouse, store, load_models(settings.sql_dir))["per_video"]
    assert rebuilt["build"] == "full refresh: its SQL or config changed"
    with warehouse.read() as conn:
        assert [d[0] for d in conn.execute("select * from per_video").description] == ["video_id", "frames", "last_frame"]


def test_a_failed_data_test_keeps_failing_until_the_video_is_fixed(tmp_path, instance) -> None:
    """Tests over sources read only the new videos, but a video that failed stays in the next builds."""
    settings = Settings(home=tmp_path / "home")
    defs = build_definitions(settings)
    videos = Videos(settings.predictions_dir, random.Random(5))
    videos.file_video("good.mp4-000000000001")

    def build() -> dict[str, bool]:
        result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets("video_summary"), instance=instance,
                                resources=defs.resources, raise_on_error=False)
        return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}

    assert build()["every_detection_has_its_frame"]
    bad = settings.predictions_dir / "frames" / "video_id=good.mp4-000000000001" / "part-0.parquet"
    frames = pq.read_table(bad).to_pylist()
    videos.write("good.mp4-000000000001", {"frames": frames[:1]})  # a re-run that lost frames, not detections
    assert not build()["every_detection_has_its_frame"]
    videos.file_video("other.mp4-000000000002")  # the next build is about another video...
    assert not build()["every_detection_has_its_frame"]  # ...and still tests the broken one
    videos.write("good.mp4-000000000001", {"frames": frames})
    assert build()["every_detection_has_its_frame"]


def test_full_refresh_run_config_rebuilds_every_model(tmp_path, instance) -> None:
    settings = Settings(home=tmp_path / "home")
    defs = build_definitions(settings)
    Videos(settings.predictions_dir, random.Random(9)).file_video("a.mp4-000000000001")
    sql = dg.AssetSelection.groups("sql")

    def builds(**kwargs) -> dict[str, str]:
        result = dg.materialize(list(defs.assets), selection=sql, instance=instance, resources=defs.resources, **kwargs)
        assert result.success
        return {e.asset_key.to_user_string(): e.materialization.metadata["build"].value
                for e in result.get_asset_materialization_events() if "build" in e.materialization.metadata}

    names = [key.to_user_string() for key in sql.resolve(defs.resolve_asset_graph())]
    assert set(builds().values()) == {"full refresh: first build"}
    assert set(builds().values()) == {"incremental"}
    assert set(builds(run_config=full_refresh_run_config(names)).values()) == {"full refresh: requested"}


def test_readers_never_wait_for_incremental_builds(tmp_path) -> None:
    """A writer adds videos and builds after each while a reader queries the published warehouse."""
    settings = Settings(home=tmp_path / "home")
    videos = Videos(settings.predictions_dir, random.Random(11))
    videos.file_video("first.mp4-000000000000")
    warehouse = Warehouse(path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path))
    build_all(warehouse, PredictionStore(root=str(settings.predictions_dir)), load_models(settings.sql_dir, sql_variables()))
    script = textwrap.dedent(
        f"""
        import random, sys, time
        sys.path[:0] = [{str(Path(__file__).parent)!r}]
        from pathlib import Path
        from test_incremental_models import Videos, build_all
        from video_assets.predictions.store import PredictionStore
        from video_assets.settings import Settings
        from video_assets.sql.defs import sql_variables
        from video_assets.sql.models import SqlModelError, load_models
        from video_assets.sql.warehouse import Warehouse
        settings = Settings(home=Path({str(settings.home)!r}))
        warehouse = Warehouse(path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path))
        if sys.argv[1] == "write":
            videos = Videos(settings.predictions_dir, random.Random(12))
            models = load_models(settings.sql_dir, sql_variables())
            for n in range(1, 6):
                videos.file_video(f"more{{n}}.mp4-{{n:012x}}")
                build_all(warehouse, PredictionStore(root=str(settings.predictions_dir)), models)
            Path({str(tmp_path / "written")!r}).touch()
        else:
            seen, deadline = [1], time.time() + 300
            while (not Path({str(tmp_path / "written")!r}).exists() or seen[-1] < 6) and time.time() < deadline:
                with warehouse.read() as conn:
                    seen.append(conn.execute("select count(*) from video_summary").fetchone()[0])
            assert seen == sorted(seen), seen  # a reader sees each published build whole, never an older one after
            print(len(set(seen)), len(seen))
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, role], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for role in ("write", "read")]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
        assert "lock" not in output.lower()
    distinct, queries = map(int, outputs[1].split()[-2:])
    assert distinct >= 3 and queries > distinct  # it read while the writer built, and saw builds land


def test_a_failed_check_of_an_incremental_model_stops_downstream_models(tmp_path, instance) -> None:
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "per_source.sql").write_text("select video_id, source from {{ source('frames') }} group by all")
    (sql_dir / "per_source.yml").write_text(
        "materialized: incremental\npartition_by: video_id\nchecks:\n  unique: [source]\n"
    )
    (sql_dir / "downstream.sql").write_text("select count(*) as n from {{ ref('per_source') }}")
    settings = Settings(home=tmp_path / "home", sql_dir=sql_dir)
    defs = build_definitions(settings)
    videos = Videos(settings.predictions_dir, random.Random(4))
    videos.write("a.mp4-000000000001", {"frames": videos.tables("a.mp4-000000000001", "inbox", START, 1.0, 3, 0)["frames"]})

    def build() -> tuple[set[str], dict[str, bool]]:
        result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.groups("sql"), instance=instance,
                                resources=defs.resources, raise_on_error=False)
        return ({e.asset_key.to_user_string() for e in result.get_asset_materialization_events()},
                {c.check_name: c.passed for c in result.get_asset_check_evaluations()})

    assert build() == ({"per_source", "downstream"}, {"unique_source": True})
    videos.write("b.mp4-000000000002", {"frames": videos.tables("b.mp4-000000000002", "inbox", START, 1.0, 3, 0)["frames"]})
    assert build() == ({"per_source"}, {"unique_source": False})  # two videos from inbox: downstream blocked


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.yml": "materialized: incremental\n"}, "needs `partition_by: video_id`"),
        ({"a.yml": "materialized: incremental\npartition_by: source\n"}, "needs `partition_by: video_id`"),
        ({"a.yml": "materialized: incremental\npartition_by: {field: hour_utc, granularity: week}\n"}, "granularity 'week'"),
        ({"a.yml": "materialized: incremental\npartition_by: {field: h, granularity: hour}\nlookback: -1\n"}, "lookback must be"),
        ({"a.yml": "materialized: incremental\npartition_by: video_id\nlookback: 1\n"}, "lookback applies to time partitions"),
        ({"a.yml": "partition_by: video_id\n"}, "only apply to `materialized: incremental`"),
        ({"a.yml": "materialized: incremental\npartition_by: video_id\n", "a.sql": "select * from {{ ref('b') }}",
          "b.sql": "select 1 as video_id"}, r"ref\('b'\) is a table"),
    ],
)
def test_malformed_incremental_config_names_the_file(tmp_path, files, message) -> None:
    files = {"a.sql": "select video_id from {{ source('frames') }}", **files}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(SqlModelError, match=message) as raised:
        load_models(tmp_path)
    assert str(tmp_path / "a.") in str(raised.value)


def test_a_build_with_nothing_new_leaves_the_warehouse_untouched(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home")
    store = PredictionStore(root=str(settings.predictions_dir))
    warehouse = Warehouse(path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path))
    models = load_models(settings.sql_dir, sql_variables())
    videos = Videos(settings.predictions_dir, random.Random(21))
    for n in range(3):
        videos.file_video(f"file{n}.mp4-{n:012x}")

    def age_folders() -> None:
        """As if written minutes ago: folders changed within the last seconds are always listed again."""
        for folder in settings.predictions_dir.glob("*/video_id=*"):
            os.utime(folder, ns=(folder.stat().st_atime_ns, folder.stat().st_mtime_ns - 60_000_000_000))

    age_folders()
    build_all(warehouse, store, models)
    published = settings.warehouse_path.stat().st_mtime_ns
    quiet = build_all(warehouse, store, models)
    assert quiet["video_summary"]["videos_changed"] == 0
    assert settings.warehouse_path.stat().st_mtime_ns == published  # nothing written, nothing copied

    videos.file_video("file1.mp4-000000000001")  # re-run just now: its folders changed moments ago
    assert build_all(warehouse, store, models)["video_summary"]["videos_changed"] == 1
    assert settings.warehouse_path.stat().st_mtime_ns > published
