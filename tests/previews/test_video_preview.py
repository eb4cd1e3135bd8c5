"""process_video end to end on real files: predictions, then the preview and the tracks table.

The sample videos and a phone-style clip (the same pictures stored sideways, with a rotation tag) run
once for the module through the job the drop-folder sensor launches.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import dagster as dg
import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from video_assets.definitions import build_definitions
from video_assets.glossary import undeclared
from video_assets.ingest.assets import METADATA as RAW_VIDEO_METADATA
from video_assets.ingest.library import VideoLibrary
from video_assets.predictions.assets import METADATA as PREDICTION_METADATA
from video_assets.previews.assets import METADATA as PREVIEW_METADATA
from video_assets.previews.build import VideoTables
from video_assets.previews.frames import read_frames
from video_assets.previews.geometry import NO_GEOMETRY
from video_assets.previews.render import PREVIEW_BUDGET, SNAPSHOT_MAX_SIDE
from video_assets.previews.sources import KeptPictures, VideoFileFrames
from video_assets.previews.tracks import build_tracks
from video_assets.settings import Settings
from video_assets.sql.defs import sql_variables
from video_assets.sql.models import load_models
from video_assets.storage import LocalStore, table_file

VIDEOS = ("two_walkers.mp4", "one_runner.mp4", "empty_hallway.mp4", "phone.mp4")


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    settings = Settings(home=tmp_path_factory.mktemp("previews") / "home")
    settings.inbox.mkdir(parents=True)
    return settings


@pytest.fixture(scope="module")
def processed(settings, samples_dir) -> Iterator[dict[str, tuple[str | None, dg.ExecuteInProcessResult]]]:
    for name in VIDEOS[:3]:
        shutil.copy2(samples_dir / name, settings.inbox / name)
    # A phone clip: the runner's pictures stored as they are, tagged to be shown turned by 90 degrees.
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(samples_dir / "one_runner.mp4"), "-c", "copy",
                    "-metadata:s:v:0", "rotate=90", str(settings.inbox / "phone.mp4")], check=True)
    library = VideoLibrary.from_settings(settings)
    keys = {f.relative_path: library.key_for(f) for f in library.scan()}
    job = build_definitions(settings).resolve_job_def("process_video")
    settings.dagster_home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(settings.dagster_home)) as instance:
        instance.add_dynamic_partitions("videos", list(keys.values()))
        results = {name: (keys[name], job.execute_in_process(partition_key=keys[name], instance=instance, raise_on_error=False))
                   for name in VIDEOS}
        sql = build_definitions(settings).resolve_job_def("build_sql_models").execute_in_process(instance=instance, raise_on_error=False)
        yield {**results, "sql": (None, sql)}


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = result.asset_materializations_for_node(asset)
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def _rows(settings: Settings, table: str, key: str) -> list[dict]:
    return pq.read_table(table_file(settings.predictions_dir, table, key)).to_pylist()


def test_each_track_crossing_adds_up_to_the_workflows_own_counters(processed, settings) -> None:
    for name in ("two_walkers.mp4", "one_runner.mp4"):
        key, result = processed[name]
        assert result.success
        tracks = _rows(settings, "tracks", key)
        last = json.loads(_rows(settings, "frames", key)[-1]["outputs"])
        crossings = [c for t in tracks for c in t["crossings"]]
        assert sum(c["direction"] == "in" for c in crossings) == last["line_count_in"] > 0
        assert sum(c["direction"] == "out" for c in crossings) == last["line_count_out"]
        assert {c["line"] for c in crossings} == {"line_counter"}
    walkers = {t["tracker_id"]: t for t in _rows(settings, "tracks", processed["two_walkers.mp4"][0])}
    assert len(walkers) == 2 and {c["direction"] for t in walkers.values() for c in t["crossings"]} == {"in", "out"}
    for track in walkers.values():  # both walk through the zone (the left half) at some point
        [visit] = track["zones"]
        assert visit["zone"] == "zone" and visit["frames_inside"] > 0
        assert track["first_frame"] <= visit["entered_frame"] <= track["last_frame"]
        assert track["duration_s"] == pytest.approx(track["last_seen_s"] - track["first_seen_s"] + 1 / 15)


def test_each_track_has_a_snapshot_of_itself_at_its_best_frame(processed, settings) -> None:
    key, _ = processed["two_walkers.mp4"]
    for track in _rows(settings, "tracks", key):
        snapshot = cv2.imread(track["snapshot"])
        assert snapshot is not None and max(snapshot.shape[:2]) <= SNAPSHOT_MAX_SIDE
        # The crop with its margin is larger than the box, and the object's texture (not the grey grid) fills its middle.
        assert snapshot.shape[0] > track["best_height"] * 1.2 and snapshot.shape[1] > track["best_width"] * 1.2
        middle = snapshot[snapshot.shape[0] // 2 - 4 : snapshot.shape[0] // 2 + 4, snapshot.shape[1] // 2 - 4 : snapshot.shape[1] // 2 + 4]
        assert middle.std() > 30  # random texture; the background is flat grey


def _kept_and_decoded(settings: Settings, key: str, path: Path) -> tuple[list[int], list, KeptPictures, VideoFileFrames]:
    tables = VideoTables.read(LocalStore(settings.predictions_dir), key)
    tracks = build_tracks(tables.detections, NO_GEOMETRY)
    pictures = pq.read_table(table_file(settings.predictions_dir, "pictures", key))
    file = VideoFileFrames(path)
    return file.sheet_frames(tables.frames["frame_idx"].to_pylist()), tracks, KeptPictures(pictures, file), file


def test_the_preview_uses_the_pictures_kept_while_predicting_without_decoding_again(processed, settings, tmp_path) -> None:
    key, _ = processed["two_walkers.mp4"]
    sheet, tracks, _, file = _kept_and_decoded(settings, key, settings.inbox / "two_walkers.mp4")
    # Kept for the same frames and tracks as the preview would decode; no file to decode from here.
    _, _, kept, _ = _kept_and_decoded(settings, key, tmp_path / "gone.mp4")
    pictures, snapshots = kept.collect(sheet, tracks)
    decoded, cropped = file.collect(sheet, tracks)
    assert len(sheet) == 12 and sorted(pictures) == sorted(decoded) == sheet
    assert sorted(snapshots) == sorted(cropped) == sorted(t.tracker_id for t in tracks) and len(tracks) == 2
    for n in sheet:  # a thumbnail of the same frame: compared at its size
        small = cv2.resize(decoded[n], pictures[n].shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(small.astype(int) - pictures[n]).mean() < 3
    for tracker, jpeg in snapshots.items():  # the same crop, at the same best frame
        ours, theirs = (cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in (jpeg, cropped[tracker]))
        assert ours.shape == theirs.shape and np.abs(ours.astype(int) - theirs).mean() < 3


def test_what_the_run_did_not_keep_is_decoded_from_the_file(processed, settings, tmp_path) -> None:
    key, _ = processed["two_walkers.mp4"]
    sheet, tracks, kept, file = _kept_and_decoded(settings, key, settings.inbox / "two_walkers.mp4")
    del kept.thumbnails[sheet[3]]
    del kept.snapshots[(tracks[0].tracker_id, tracks[0].best_row["frame_idx"])]
    pictures, snapshots = kept.collect(sheet, tracks)
    decoded, cropped = file.collect([sheet[3]], [tracks[0]])
    assert sorted(pictures) == sheet and np.array_equal(pictures[sheet[3]], decoded[sheet[3]])
    assert snapshots[tracks[0].tracker_id] == cropped[tracks[0].tracker_id] and len(snapshots) == len(tracks)
    # A hosted backend delivers no pictures: its table is empty, and everything is decoded.
    hosted = KeptPictures(pq.read_table(table_file(settings.predictions_dir, "pictures", key)).slice(0, 0), file)
    assert hosted.collect(sheet, tracks)[1] == file.collect(sheet, tracks)[1]


def test_previews_are_small_pictures_and_replace_their_older_versions(processed, settings) -> None:
    for name in VIDEOS:
        key, result = processed[name]
        meta = _metadata(result, "video_preview")
        sheet, chart = Path(meta["contact_sheet_file"]), Path(meta["contact_sheet_file"]).with_name("activity.png")
        assert sheet.stat().st_size + chart.stat().st_size <= PREVIEW_BUDGET
        assert 700 < cv2.imread(str(sheet)).shape[1] <= 1000 and cv2.imread(str(chart)).shape[:2] == (300, 960)
        assert meta["contact_sheet"].startswith("![contact sheet") and settings.media_base_url in meta["contact_sheet"]
        # one published version of each, no temporary files left
        assert [p.name for p in sheet.parent.parent.iterdir()] == [sheet.parent.name]
        snapshot_dirs = [p.name for p in table_file(settings.predictions_dir, "tracks", key).parent.iterdir() if p.is_dir()]
        assert len(snapshot_dirs) == 1 and snapshot_dirs[0].startswith("snapshots-")
    assert _metadata(processed["empty_hallway.mp4"][1], "video_preview")["tracks"] == 0


def test_a_phone_clip_is_described_and_drawn_as_the_model_saw_it(processed, settings, samples_dir) -> None:
    key, result = processed["phone.mp4"]
    assert result.success
    [video] = _rows(settings, "videos", key)
    assert (video["width"], video["height"], video["rotation"]) == (360, 640, 90)
    assert _metadata(result, "frame_predictions")["video_resolution"] == "360x640"
    for track in _rows(settings, "tracks", key):  # boxes lie in the upright 360 x 640 picture
        assert track["best_x"] + track["best_width"] / 2 <= 360 + 1 and track["best_y"] + track["best_height"] / 2 <= 640 + 1
    capture = cv2.VideoCapture(str(settings.inbox / "phone.mp4"))
    opencv = [capture.read()[1] for _ in range(40)]
    decoded = dict(read_frames(settings.inbox / "phone.mp4", [0, 17, 39]))
    assert all(np.array_equal(decoded[n], opencv[n]) for n in (0, 17, 39))  # same frames, same turn as the model's


def test_every_metadata_key_is_explained_and_the_frames_check_passes(processed) -> None:
    _, result = processed["two_walkers.mp4"]
    for asset, declared in (("raw_video", RAW_VIDEO_METADATA), ("frame_predictions", PREDICTION_METADATA),
                            ("video_preview", PREVIEW_METADATA)):
        assert undeclared(_metadata(result, asset), declared) == [], asset
    predictions = _metadata(result, "frame_predictions")
    assert predictions["video_fps"] == 15.0 and predictions["processing_fps"] > 0 and "frames_per_s" not in predictions
    assert _metadata(result, "raw_video")["video_path"].endswith("inbox/two_walkers.mp4")
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "all_frames_processed" and check.passed


def test_object_events_lists_each_appearance_crossing_and_zone_entry_with_its_snapshot(processed, settings) -> None:
    _, sql = processed["sql"]
    assert sql.success
    key, _ = processed["two_walkers.mp4"]
    tracks = _rows(settings, "tracks", key)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        events = conn.execute(
            "select event, line_or_zone, tracker_id, frame_idx, snapshot from object_events where video_id = ? order by all", [key]
        ).fetchall()
        expected = sorted(
            [("appeared", None, t["tracker_id"], t["first_frame"], t["snapshot"]) for t in tracks]
            + [(f"crossed_{c['direction']}", c["line"], t["tracker_id"], c["frame_idx"], t["snapshot"]) for t in tracks for c in t["crossings"]]
            + [("entered_zone", z["zone"], t["tracker_id"], z["entered_frame"], t["snapshot"]) for t in tracks for z in t["zones"]]
        )
        assert events == expected
        # The docs' example ("every person who crossed the line after 18:00, with snapshot"), with this
        # workflow's class and a cut-off between the two walkers' crossings.
        crossings = sorted(c["ts"] for t in tracks for c in t["crossings"])
        cutoff = crossings[0] + (crossings[1] - crossings[0]) / 2
        later = conn.execute(
            "select tracker_id, snapshot from object_events where class_name = 'motion' "
            "and event in ('crossed_in', 'crossed_out') and event_ts >= ? and video_id = ?", [cutoff, key]
        ).fetchall()
        [last] = [t for t in tracks for c in t["crossings"] if c["ts"] == crossings[1]]
        assert later == [(last["tracker_id"], last["snapshot"])]


def test_every_column_of_every_sql_model_is_described(processed, settings) -> None:
    _, sql = processed["sql"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        for model in load_models(settings.sql_dir, sql_variables()):
            columns = [row[0] for row in conn.execute(f'describe "{model.name}"').fetchall()]
            assert columns == list(model.columns), model.name  # every column described, in order, none stale
    [event] = [e for e in sql.get_asset_materialization_events() if e.asset_key == dg.AssetKey("object_events")]
    schema = event.step_materialization_data.materialization.metadata["dagster/column_schema"].value
    assert all(column.description for column in schema.columns)
    preview = event.step_materialization_data.materialization.metadata["preview"].value
    assert preview.splitlines()[2].startswith("| **event_ts** |")  # one line per column: wide models stay readable
