"""Incremental SQL models equal a full rebuild, row for row, whatever happens to the videos in between.

Random (seeded) sequences of file videos added, re-run and deleted and camera hours published,
republished and deleted are written as real Parquet in the real layout; after each step every model
is built incrementally in a real DuckDB warehouse and each incremental table is compared with the
model's SELECT run over all the Parquet.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from video_assets.definitions import build_definitions
from video_assets.predictions.store import PredictionStore
from video_assets.settings import Settings
from video_assets.sql import changes
from video_assets.sql.assets import full_refresh_run_config
from video_assets.sql.defs import sql_variables
from video_assets.sql.models import SqlModelError, load_models
from video_assets.sql.warehouse import Warehouse

@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)])
def test_random_changes_give_the_tables_a_full_rebuild_gives(
    tmp_path, monkeypatch, seed, parquet_videos, build_all, rows, same_rows, full_rebuild
) -> None:
    # folders are trusted by their mtime at once (not 2 s later): the unchanged ones are not listed again
    monkeypatch.setattr(changes, "SETTLED_NS", 0)
    settings = Settings(home=tmp_path / "home")
    store = PredictionStore(root=str(settings.predictions_dir))
    warehouse = Warehouse(path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path))
    models = load_models(settings.sql_dir, sql_variables())
    incremental = [m for m in models if m.materialized == "incremental"]
    assert {m.name for m in incremental} >= {"video_summary", "line_crossings_per_hour", "camera_health"}
    videos = parquet_videos(settings.predictions_dir, random.Random(seed))
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


def test_an_incremental_build_reads_only_what_changed(tmp_path, parquet_videos, build_all) -> None:
    settings = Settings(home=tmp_path / "home")
    store = PredictionStore(root=str(settings.predictions_dir))
    warehouse = Warehouse(path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path))
    models = load_models(settings.sql_dir, sql_variables())
    videos = parquet_videos(settings.predictions_dir, random.Random(7))
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


def test_a_changed_model_definition_is_rebuilt_in_full(tmp_path, parquet_videos, build_all) -> None:
    settings = Settings(home=tmp_path / "home", sql_dir=tmp_path / "sql")
    settings.sql_dir.mkdir()
    (settings.sql_dir / "per_video.sql").write_text("select video_id, count(*) as frames from {{ source('frames') }} group by all")
    (settings.sql_dir / "per_video.yml").write_text("materialized: incremental\npartition_by: video_id\n")
    store = PredictionStore(root=str(settings.predictions_dir))
    warehouse = Warehouse(path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path))
    videos = parquet_videos(settings.predictions_dir, random.Random(3))
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


def test_a_failed_data_test_keeps_failing_until_the_video_is_fixed(tmp_path, instance, parquet_videos) -> None:
    """Tests over sources read only the new videos, but a video that failed stays in the next builds."""
    settings = Settings(home=tmp_path / "home")
    defs = build_definitions(settings)
    videos = parquet_videos(settings.predictions_dir, random.Random(5))
    videos.file_video("good.mp4-000000000001")

    def build() -> dict[str, bool]:
        result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets("video_summary"), instance=instance,
                                resources=defs.resources, raise_on_error=False)
        return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}

    assert build()["detections_match_frames"]
    bad = settings.predictions_dir / "frames" / "video_id=good.mp4-000000000001" / "part-0.parquet"
    frames = pq.read_table(bad).to_pylist()
    videos.write("good.mp4-000000000001", {"frames": frames[:1]})  # a re-run that lost frames, not detections
    assert not build()["detections_match_frames"]
    videos.file_video("other.mp4-000000000002")  # the next build is about another video...
    assert not build()["detections_match_frames"]  # ...and still tests the broken one
    videos.write("good.mp4-000000000001", {"frames": frames})
    assert build()["detections_match_frames"]


def test_full_refresh_run_config_rebuilds_every_model(tmp_path, instance, parquet_videos) -> None:
    settings = Settings(home=tmp_path / "home")
    defs = build_definitions(settings)
    parquet_videos(settings.predictions_dir, random.Random(9)).file_video("a.mp4-000000000001")
    sql = dg.AssetSelection.groups("sql")

    def builds(**kwargs) -> dict[str, str]:
        result = dg.materialize(list(defs.assets), selection=sql, instance=instance, resources=defs.resources, **kwargs)
        assert result.success
        return {e.asset_key.to_user_string(): e.materialization.metadata["build"].value
                for e in result.get_asset_materialization_events() if "build" in e.materialization.metadata}

    assert set(builds().values()) == {"full refresh: first build"}
    assert set(builds().values()) == {"incremental"}
    assert set(builds(run_config=full_refresh_run_config()).values()) == {"full refresh: requested"}


def test_readers_never_wait_for_incremental_builds(tmp_path, parquet_videos, build_all) -> None:
    """A writer adds videos and builds after each while a reader queries the published warehouse."""
    settings = Settings(home=tmp_path / "home")
    videos = parquet_videos(settings.predictions_dir, random.Random(11))
    videos.file_video("first.mp4-000000000000")
    warehouse = Warehouse(path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path))
    build_all(warehouse, PredictionStore(root=str(settings.predictions_dir)), load_models(settings.sql_dir, sql_variables()))
    script = textwrap.dedent(
        f"""
        import random, sys, time
        sys.path[:0] = [{str(Path(__file__).parent)!r}]
        from pathlib import Path
        from conftest import Videos, build_all
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


def test_a_failed_check_of_an_incremental_model_stops_downstream_models(tmp_path, instance, parquet_videos) -> None:
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "per_source.sql").write_text("select video_id, source from {{ source('frames') }} group by all")
    (sql_dir / "per_source.yml").write_text(
        "materialized: incremental\npartition_by: video_id\nchecks:\n  unique: [source]\n"
    )
    (sql_dir / "downstream.sql").write_text("select count(*) as n from {{ ref('per_source') }}")
    settings = Settings(home=tmp_path / "home", sql_dir=sql_dir)
    defs = build_definitions(settings)
    videos = parquet_videos(settings.predictions_dir, random.Random(4))
    videos.write("a.mp4-000000000001", {"frames": videos.tables("a.mp4-000000000001", "inbox", parquet_videos.START, 1.0, 3, 0)["frames"]})

    def build() -> tuple[set[str], dict[str, bool]]:
        result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.groups("sql"), instance=instance,
                                resources=defs.resources, raise_on_error=False)
        return ({e.asset_key.to_user_string() for e in result.get_asset_materialization_events()},
                {c.check_name: c.passed for c in result.get_asset_check_evaluations()})

    assert build() == ({"per_source", "downstream"}, {"unique_source": True})
    videos.write("b.mp4-000000000002", {"frames": videos.tables("b.mp4-000000000002", "inbox", parquet_videos.START, 1.0, 3, 0)["frames"]})
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


def test_a_build_with_nothing_new_leaves_the_warehouse_untouched(tmp_path, parquet_videos, build_all) -> None:
    settings = Settings(home=tmp_path / "home")
    store = PredictionStore(root=str(settings.predictions_dir))
    warehouse = Warehouse(path=str(settings.warehouse_path), build_path=str(settings.warehouse_build_path))
    models = load_models(settings.sql_dir, sql_variables())
    videos = parquet_videos(settings.predictions_dir, random.Random(21))
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
