"""The SQL models over camera hours: counters that run on across hours, time weighted by what was received."""

from datetime import datetime, timedelta, timezone

import dagster as dg
import duckdb
import pytest

from video_assets.backends.base import BackendIdentity
from video_assets.definitions import build_definitions
from video_assets.settings import Settings
from video_assets.streams.segments import Gap, SegmentRecorder
from video_assets.streams.store import CameraStore

H18 = datetime(2026, 11, 26, 18, tzinfo=timezone.utc)
H19 = H18 + timedelta(hours=1)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    """Two hours of a camera whose worker restarted (its line counter with it) early in the second hour."""
    settings = Settings(home=tmp_path_factory.mktemp("camera_models") / "home")
    store = CameraStore(root=str(settings.streams_dir), config_file=str(settings.camera_config_path))
    recorder = SegmentRecorder(store, "gate", BackendIdentity("self_hosted", "inline:x"), 60)
    readings = [(H18 + timedelta(minutes=59, seconds=s), n) for s, n in ((50, 0), (52, 1), (54, 1), (56, 2))]
    readings += [(H19 + timedelta(seconds=s), n) for s, n in ((1, 3), (3, 3), (20, 0), (22, 1))]
    for ts, count_in in readings:
        recorder.add_frame(ts, (), {"line_count_in": count_in}, dropped_before=2, size=(640, 360), source_fps=15.0)
    recorder.add_gap(Gap(H19 + timedelta(seconds=3), H19 + timedelta(seconds=20), "worker_restart"))
    recorder.commit_due(force=True)
    defs = build_definitions(settings)
    settings.dagster_home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(settings.dagster_home)) as instance:
        instance.add_dynamic_partitions("cameras", ["gate"])
        for hour in ("2026-11-26-18:00", "2026-11-26-19:00"):
            window = defs.get_assets_def("camera_window")
            assert dg.materialize(
                [window], partition_key=f"gate|{hour}", instance=instance, resources=defs.resources
            ).success
        sql = dg.AssetSelection.groups("sql")
        result = dg.materialize(list(defs.assets), selection=sql, instance=instance, resources=defs.resources)
        assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        yield conn


def test_line_crossings_run_on_across_hours_and_restart_with_the_worker(warehouse) -> None:
    rows = warehouse.execute(
        "select hour_utc, crossings from line_crossings_per_hour "
        "where source = 'gate' and counter = 'line_count_in' order by 1"
    ).fetchall()
    # 18:00: 0 -> 1 -> 1 -> 2 is two crossings; 19:00: 2 -> 3 is one, then the counter restarted: 0 -> 1 is one more.
    assert [(hour, n) for hour, n in rows] == [(H18, 2), (H19, 2)]


def test_seconds_count_every_frame_received_not_only_those_processed(warehouse) -> None:
    rows = warehouse.execute(
        "select hour_utc, frames_processed, video_s from activity_per_source_hour where source = 'gate' order by 1"
    ).fetchall()
    # 4 frames processed per hour, each after 2 dropped: 12 frames received at 15 fps = 0.8 s per hour.
    assert [(hour, n, round(s, 9)) for hour, n, s in rows] == [(H18, 4, 0.8), (H19, 4, 0.8)]
    health = warehouse.execute(
        "select hour, frames_dropped, gaps, gap_seconds from camera_health order by 1"
    ).fetchall()
    assert health == [(H18, 8, 0, 0.0), (H19, 8, 1, 17.0)]



def test_line_crossing_steps_is_a_view_of_per_frame_crossings(warehouse) -> None:
    """The one place crossings are counted: line_crossings_per_hour and the Vision Events sink read it."""
    [(kind,)] = warehouse.execute(
        "select table_type from information_schema.tables where table_name = 'line_crossing_steps'"
    ).fetchall()
    assert kind == "VIEW"
    steps = warehouse.execute(
        "select video_id, total, crossings from line_crossing_steps where counter = 'line_count_in' order by frame_ts"
    ).fetchall()
    assert [(v[-2:], total, n) for v, total, n in steps] == [
        ("18", 0, 0), ("18", 1, 1), ("18", 1, 0), ("18", 2, 1),  # the counter runs on into the next hour:
        ("19", 3, 1), ("19", 3, 0), ("19", 0, 0), ("19", 1, 1),  # 2 -> 3 is one crossing; 3 -> 0 is a restart
    ]
