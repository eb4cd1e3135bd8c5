"""The SQL models: each one equals an independent computation over the same Parquet."""

import io
import json
import math
import shutil
from collections import defaultdict
from datetime import datetime

import dagster as dg
import pyarrow.dataset as ds
import pytest

from video_assets.cli.query import run_query
from video_assets.definitions import build_definitions
from video_assets.ingest.files import scan_drop_folders
from video_assets.ingest.library import VideoLibrary
from video_assets.samples import MovingObject, SampleVideo, write_sample
from video_assets.settings import DropFolder, Settings

# 75 s at 2 fps: spans video minutes 0 and 1.
SLOW = SampleVideo("slow_walker.mp4", frames=150, fps=2, objects=(MovingObject("slow", 30, 200, 3.0, 40, 80, seed=4),))
TWO_HOURS = 2 * 3600


@pytest.fixture(scope="module")
def home(tmp_path_factory, samples_dir, fixed_mtime) -> Settings:
    """Four videos in two sources, recorded in different hours, processed and modelled once."""
    root = tmp_path_factory.mktemp("sqlhome")
    settings = Settings(home=root / "home", extra_drop_folders=(DropFolder("dock", root / "dock"),))
    settings.inbox.mkdir(parents=True)
    (root / "dock").mkdir()
    shutil.copy2(samples_dir / "two_walkers.mp4", settings.inbox / "two_walkers.mp4")
    shutil.copy2(samples_dir / "empty_hallway.mp4", settings.inbox / "empty_hallway.mp4")
    shutil.copy2(samples_dir / "one_runner.mp4", root / "dock" / "one_runner.mp4")
    write_sample(SLOW, root / "dock" / SLOW.name, mtime=fixed_mtime + TWO_HOURS)
    defs = build_definitions(settings)
    library = VideoLibrary.from_settings(settings)
    keys = [library.key_for(f) for f in scan_drop_folders(settings.drop_folders)]
    settings.dagster_home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(settings.dagster_home)) as instance:
        instance.add_dynamic_partitions("videos", keys)
        videos = [defs.get_assets_def("raw_video"), defs.get_assets_def("frame_predictions")]
        for key in keys:
            assert dg.materialize(videos, partition_key=key, instance=instance, resources=defs.resources).success
        result = dg.materialize(
            list(defs.assets), selection=dg.AssetSelection.groups("sql"), instance=instance, resources=defs.resources
        )
        assert result.success
        assert all(c.passed for c in result.get_asset_check_evaluations())
    return settings


def table(settings: Settings, name: str) -> list[dict]:
    return ds.dataset(settings.predictions_dir / name, format="parquet").to_table().to_pylist()


def model(settings: Settings, name: str) -> list[dict]:
    out = io.StringIO()
    assert run_query(settings, f"select * from {name}", "json", out) == 0
    return json.loads(out.getvalue())


def hour(ts: datetime) -> str:
    return str(ts.replace(minute=0, second=0, microsecond=0))


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_detections_per_minute_of_video_time(home) -> None:
    expected = defaultdict(lambda: {"detections": 0, "frames": set(), "tracks": set()})
    for d in table(home, "detections"):
        cell = expected[(d["video_id"], d["class_name"], int(d["time_offset_s"] // 60))]
        cell["detections"] += 1
        cell["frames"].add(d["frame_idx"])
        cell["tracks"].add(d["tracker_id"])
    got = {(r["video_id"], r["class_name"], r["video_minute"]): r for r in model(home, "detections_per_minute")}
    assert set(got) == set(expected) and any(minute == 1 for _, _, minute in got)
    for key, cell in expected.items():
        assert (got[key]["detections"], got[key]["frames_with_class"], got[key]["tracks"]) == (
            cell["detections"], len(cell["frames"]), len(cell["tracks"] - {None})
        )


def test_detections_per_wall_minute(home) -> None:
    expected = defaultdict(lambda: [0, set(), set()])
    for d in table(home, "detections"):
        cell = expected[(d["source"], d["class_name"], str(d["frame_ts"].replace(second=0, microsecond=0)))]
        cell[0] += 1
        cell[1].add(d["video_id"])
        cell[2].add((d["video_id"], d["tracker_id"]))
    got = {(r["source"], r["class_name"], r["minute_utc"]): r for r in model(home, "detections_per_wall_minute")}
    assert set(got) == set(expected) and {s for s, _, _ in got} == {"inbox", "dock"}
    for key, (detections, videos, tracks) in expected.items():
        assert (got[key]["detections"], got[key]["videos"], got[key]["tracks"]) == (detections, len(videos), len(tracks))


def test_track_dwell(home) -> None:
    fps = {v["video_id"]: v["fps"] for v in table(home, "videos")}
    seen = defaultdict(list)
    for d in table(home, "detections"):
        seen[(d["video_id"], d["tracker_id"])].append(d)
    got = {(r["video_id"], r["tracker_id"]): r for r in model(home, "track_dwell")}
    assert set(got) == set(seen) and len(got) >= 4
    for key, rows in seen.items():
        first, last = min(r["time_offset_s"] for r in rows), max(r["time_offset_s"] for r in rows)
        row = got[key]
        assert (row["first_frame"], row["last_frame"]) == (min(r["frame_idx"] for r in rows), max(r["frame_idx"] for r in rows))
        assert row["frames_seen"] == len({r["frame_idx"] for r in rows})
        assert close(row["dwell_s"], last - first + 1 / fps[key[0]])


def test_line_crossings_per_hour(home) -> None:
    frames = sorted(table(home, "frames"), key=lambda f: (f["video_id"], f["frame_idx"]))
    expected: dict = defaultdict(int)
    previous: dict = {}
    for f in frames:
        for counter, total in json.loads(f["outputs"]).items():
            if counter.endswith(("count_in", "count_out")):
                expected[(f["source"], hour(f["frame_ts"]), counter)] += total - previous.get((f["video_id"], counter), 0)
                previous[(f["video_id"], counter)] = total
    got = {(r["source"], r["hour_utc"], r["counter"]): r["crossings"] for r in model(home, "line_crossings_per_hour")}
    assert got == dict(expected)
    assert sum(got.values()) >= 3  # two walkers cross once each, the runner once


def test_zone_occupancy_per_hour(home) -> None:
    fps = {v["video_id"]: v["fps"] for v in table(home, "videos")}
    readings = defaultdict(list)
    for f in table(home, "frames"):
        occupancy = json.loads(f["outputs"])["zone_occupancy"]
        readings[(f["source"], hour(f["frame_ts"]), "zone_occupancy")].append((occupancy, 1 / fps[f["video_id"]]))
    got = {(r["source"], r["hour_utc"], r["zone"]): r for r in model(home, "zone_occupancy_per_hour")}
    assert set(got) == set(readings)
    for key, values in readings.items():
        row = got[key]
        assert close(row["mean_occupancy"], sum(v for v, _ in values) / len(values))
        assert row["max_occupancy"] == max(v for v, _ in values) and row["frames"] == len(values)
        assert close(row["occupied_s"], sum(s for v, s in values if v > 0))


def test_activity_per_source_hour(home) -> None:
    fps = {v["video_id"]: v["fps"] for v in table(home, "videos")}
    frames = defaultdict(lambda: [0, 0.0, set()])
    for f in table(home, "frames"):
        cell = frames[(f["source"], hour(f["frame_ts"]))]
        cell[0] += 1
        cell[1] += 1 / fps[f["video_id"]]
        cell[2].add(f["video_id"])
    detections = defaultdict(lambda: [0, set(), set()])
    for d in table(home, "detections"):
        cell = detections[(d["source"], hour(d["frame_ts"]))]
        cell[0] += 1
        cell[1].add((d["video_id"], d["tracker_id"]))
        cell[2].add(d["class_name"])
    got = {(r["source"], r["hour_utc"]): r for r in model(home, "activity_per_source_hour")}
    assert set(got) == set(frames) and len({h for _, h in got}) == 2  # the slow walker is two hours later
    for key, (count, seconds, videos) in frames.items():
        row = got[key]
        d_count, tracks, classes = detections.get(key, (0, set(), set()))
        assert (row["frames_processed"], row["videos"], row["detections"], row["tracks"]) == (count, len(videos), d_count, len(tracks))
        assert close(row["video_s"], seconds) and row["classes"] == ", ".join(sorted(classes))


def test_sql_command_formats(home) -> None:
    out = io.StringIO()
    assert run_query(home, "select video_id, frames_processed from video_summary order by video_id", "table", out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["video_id", "frames_processed"] and lines[-1] == "(4 rows)"
    out = io.StringIO()
    assert run_query(home, "select count(*) as n from detections", "csv", out) == 0
    assert out.getvalue().splitlines() == ["n", str(len(table(home, "detections")))]
    assert run_query(home, "select nope from nowhere", "table", io.StringIO()) == 2
