"""`video-assets demo`: the motion samples in the inbox, the astronaut clip in a `faces` drop folder that runs
the face-tracking workflow, and a closing table of what each video yielded."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from video_assets.backends.self_hosted import FACE_WORKFLOW_FILE
from video_assets.cli.demo import face_source_environment
from video_assets.settings import Settings

CLI = [sys.executable, "-m", "video_assets.cli.main"]


def test_the_faces_folder_is_added_to_what_is_configured_unless_it_exists(tmp_path) -> None:
    env = {"VIDEO_ASSETS_HOME": str(tmp_path), "VIDEO_ASSETS_DROP_FOLDERS": f"dock={tmp_path / 'dock'}"}
    added = face_source_environment(Settings.from_env(env))
    assert added == {
        "VIDEO_ASSETS_DROP_FOLDERS": f"dock={tmp_path / 'dock'},faces={tmp_path / 'faces'}",
        "VIDEO_ASSETS_SOURCE_WORKFLOWS": f"faces={FACE_WORKFLOW_FILE}",
    }
    configured = {**env, **added}
    assert [f.source for f in Settings.from_env(configured).drop_folders] == ["inbox", "dock", "faces"]
    assert face_source_environment(Settings.from_env(configured)) == {}


@pytest.mark.slow
def test_demo_shows_the_face_its_track_and_its_line_crossing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "VIDEO_ASSETS_HOME": str(home)}
    for name in ("VIDEO_ASSETS_DROP_FOLDERS", "VIDEO_ASSETS_SOURCE_WORKFLOWS", "VIDEO_ASSETS_WORKFLOW"):
        env.pop(name, None)

    done = subprocess.run([*CLI, "demo"], env=env, capture_output=True, text=True, timeout=900)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 succeeded; 4 file(s) in all" in done.stdout
    table = done.stdout.split("What each video yielded")[1]
    faces_row = next(line.split() for line in table.splitlines() if line.startswith("faces "))
    assert faces_row[:7] == ["faces", "astronaut_walks_by.mp4", "60", faces_row[3], "face", "1", "1"]
    assert int(faces_row[3]) >= 58
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        rows = conn.execute("select source, classes, tracks from video_summary order by source, file").fetchall()
    assert rows == [("faces", "face", 1), ("inbox", "", 0), ("inbox", "motion", 1), ("inbox", "motion", 2)]
