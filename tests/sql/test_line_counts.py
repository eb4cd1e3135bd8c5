"""Line crossings counted when frames are written (frames.line_counts) equal what line_crossing_steps
computes from the outputs JSON of frames written before that column existed."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import duckdb

from video_assets.predictions.store import PredictionStore
from video_assets.settings import Settings
from video_assets.sql.defs import sql_variables
from video_assets.sql.incremental import render
from video_assets.sql.models import load_models
from video_assets.storage import LineCounters


def test_crossings_are_the_total_minus_the_previous_frames_or_the_total_after_a_restart() -> None:
    counters = LineCounters()
    readings = [{"a_count_in": 0, "zone": 2}, {"a_count_in": 2, "a_count_out": "1"}, {"a_count_in": 1, "a_count_out": 1.4},
                {"a_count_in": True, "a_count_out": 3}, {"a_count_in": 4}]
    steps = [[(c["counter"], c["total"], c["crossings"]) for c in counters.step(r)] for r in readings]
    assert steps == [
        [("a_count_in", 0, 0)],
        [("a_count_in", 2, 2), ("a_count_out", 1, 1)],
        [("a_count_in", 1, 1), ("a_count_out", 1, 0)],  # 2 -> 1: restarted; "1" and 1.4 are both 1, as in SQL
        [("a_count_in", None, None), ("a_count_out", 3, 2)],  # true is not a count
        [("a_count_in", 4, 4)],  # after a reading that was not a number, from 0 (SQL: lag is NULL)
    ]


def write_both_ways(videos, name: str, parts: list[tuple[str, list[dict]]]) -> None:
    """The frames of a file video (one part) or of a camera's consecutive hours (video ids <camera>@<hour>),
    written twice: as the writers write them now (source counted-<name>), and as older files (older-<name>)."""
    counters = LineCounters()  # one per video, or per camera across its hours
    for kind in ("counted", "older"):
        for suffix, frames in parts:
            video_id = f"{kind}-{name}{suffix}"
            rows = [
                {**f, "video_id": video_id, "source": f"{kind}-{name}",
                 "line_counts": counters.step(json.loads(f["outputs"])) if kind == "counted" else None}
                for f in frames
            ]
            videos.write(video_id, {"frames": rows})


def steps(settings: Settings, store: PredictionStore, source: str) -> list[tuple]:
    [model] = [m for m in load_models(settings.sql_dir, sql_variables()) if m.name == "line_crossing_steps"]
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        sql = f"select frame_ts, frame_idx, counter, total, crossings from ({render(model, store.relation_sql)})"
        return conn.execute(sql + " where source = ? order by all", [source]).fetchall()


def test_counted_when_written_equals_computed_from_the_outputs(tmp_path, parquet_videos) -> None:
    settings = Settings(home=tmp_path / "home")
    store = PredictionStore(root=str(settings.predictions_dir))
    videos = parquet_videos(settings.predictions_dir, random.Random(7))
    start = videos.START
    write_both_ways(videos, "clip.mp4-000000000001", [("", videos.tables("v", "s", start, 2.0, 60, total=0)["frames"])])
    # A camera whose counters run on from one hour into the next, where its worker restarts them.
    first_hour = videos.tables("v", "s", start + timedelta(minutes=50), 0.05, 30, total=0)["frames"]
    second_hour = videos.tables("v", "s", start + timedelta(hours=1), 0.05, 30, total=0)["frames"]
    write_both_ways(videos, "cam", [("@2026-11-26T06", first_hour), ("@2026-11-26T07", second_hour)])

    for name in ("clip.mp4-000000000001", "cam"):
        counted = steps(settings, store, f"counted-{name}")
        assert counted == steps(settings, store, f"older-{name}")
        assert sum(row[-1] for row in counted) > 0
    camera = steps(settings, store, "counted-cam")
    [(restart_total, restart_crossings)] = [(r[3], r[4]) for r in camera if r[0] == start + timedelta(hours=1)
                                            and r[2] == "line_count_in"]
    assert restart_crossings == restart_total  # below the first hour's last total: the counter restarted
