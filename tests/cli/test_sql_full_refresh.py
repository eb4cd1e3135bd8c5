"""`video-assets sql --full-refresh`: every SQL model rebuilt from all the Parquet, then an optional query."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from video_assets.predictions.schema import DETECTIONS, FRAMES, VIDEOS
from video_assets.settings import Settings

CLI = str(Path(sys.executable).with_name("video-assets"))
TS = datetime(2026, 11, 26, 18, tzinfo=UTC)


def write_video(settings: Settings, video_id: str, frames: int) -> None:
    common = {"video_id": video_id, "source": "inbox", "workflow_version": "inline:x", "backend": "self_hosted"}
    rows = {
        "frames": [{**common, "frame_idx": i, "time_offset_s": float(i), "frame_ts": TS, "detection_count": 0,
                    "outputs": '{"line_count_in": 0}'} for i in range(frames)],
        "detections": [],
        "videos": [{**common, "file": "a.mp4", "sha256": "0" * 64, "bytes": 1, "duration_s": float(frames),
                    "fps": 1.0, "width": 64, "height": 64, "rotation": 0, "codec": "h264", "recorded_at": TS,
                    "frames_expected": frames, "frames_processed": frames, "processed_at": TS}],
    }
    for table, schema in (("frames", FRAMES), ("detections", DETECTIONS), ("videos", VIDEOS)):
        path = settings.predictions_dir / table / f"video_id={video_id}" / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows[table], schema=schema), path)


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIDEO_ASSETS_HOME": str(home)}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=600)


def test_full_refresh_rebuilds_every_model_then_runs_the_query(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home")
    write_video(settings, "a.mp4-000000000001", frames=3)
    done = run_cli(settings.home, "sql", "--full-refresh", "select frames_processed from video_summary", "--csv")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "video_summary" in done.stdout and "line_crossings_per_hour" in done.stdout
    assert done.stdout.splitlines()[-2:] == ["frames_processed", "3"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        builds = conn.execute("select count(*) from _incremental.models").fetchone()[0]
    assert builds == len([p for p in settings.sql_dir.glob("*.yml") if "incremental" in p.read_text()])


def test_sql_needs_a_query_or_full_refresh(tmp_path) -> None:
    done = run_cli(tmp_path / "home", "sql")
    assert done.returncode == 2 and "give a query (or --full-refresh)" in done.stderr
