"""A real trained detector with no download: the shipped face-tracking workflow (OpenCV's Haar cascade in a
custom Python block) on generated clips, run by Dagster for the drop folder whose videos it is set for."""

import json
import shutil
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from video_assets.backends.self_hosted import FACE_WORKFLOW_FILE, SelfHostedBackend
from video_assets.definitions import build_definitions
from video_assets.ingest.files import scan_drop_folders
from video_assets.ingest.library import VideoLibrary
from video_assets.predictions.backfill import classify_partitions
from video_assets.samples import FACE_SAMPLE, LINE_X, write_sample
from video_assets.settings import BackendSettings, DropFolder, Settings

FIXED_MTIME = 1_700_000_000.0


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample(FACE_SAMPLE, tmp_path_factory.mktemp("faces") / FACE_SAMPLE.name, mtime=FIXED_MTIME)


def faces_settings(settings: Settings) -> Settings:
    """The inbox keeps the default motion workflow; the `faces` drop folder runs face tracking."""
    faces = DropFolder("faces", settings.home / "faces")
    faces.path.mkdir(parents=True, exist_ok=True)
    return Settings(
        home=settings.home,
        extra_drop_folders=(faces,),
        backend=BackendSettings(values={"source_workflows": f"faces={FACE_WORKFLOW_FILE}"}),
    )


def table(settings: Settings, name: str, key: str) -> list[dict]:
    return pq.read_table(settings.predictions_dir / name / f"video_id={key}").to_pylist()


@pytest.mark.slow
def test_faces_are_found_tracked_and_counted_at_the_line_in_their_own_drop_folder(
    settings, instance, samples_dir, face_clip
) -> None:
    settings = faces_settings(settings)
    faces_folder = settings.home / "faces"
    shutil.copy2(face_clip, faces_folder / face_clip.name)
    shutil.copy2(samples_dir / "one_runner.mp4", faces_folder / "one_runner.mp4")  # textured blocks, no face
    shutil.copy2(samples_dir / "two_walkers.mp4", settings.inbox / "two_walkers.mp4")
    library = VideoLibrary.from_settings(settings)
    keys = {f.relative_path: library.key_for(f) for f in scan_drop_folders(settings.drop_folders)}
    instance.add_dynamic_partitions("videos", list(keys.values()))
    defs = build_definitions(settings)
    assets = [defs.get_assets_def("raw_video"), defs.get_assets_def("frame_predictions")]
    for key in keys.values():
        assert dg.materialize(assets, partition_key=key, instance=instance, resources=defs.resources).success

    face_version = SelfHostedBackend(workflow_file=FACE_WORKFLOW_FILE).identity().workflow_version
    motion_version = SelfHostedBackend().identity().workflow_version
    face_key = keys[FACE_SAMPLE.name]
    detections = table(settings, "detections", face_key)
    # The cascade finds the one face in every frame; the tracker reports it from its second sighting on.
    assert sorted(d["frame_idx"] for d in detections) == list(range(1, FACE_SAMPLE.frames))
    for d in detections:
        left, top, right, bottom = photo_box(d["frame_idx"])
        assert (d["class_name"], d["class_id"], d["confidence"]) == ("face", 0, 1.0)
        assert left <= d["x"] - d["width"] / 2 and d["x"] + d["width"] / 2 <= right, d
        assert top <= d["y"] - d["height"] / 2 and d["y"] + d["height"] / 2 <= bottom, d
        assert 40 <= d["width"] <= 60 and d["width"] == d["height"], d  # her face is about 47 px in a 240 px photo
    assert len({d["tracker_id"] for d in detections}) == 1
    assert {d["workflow_version"] for d in detections} == {face_version}

    # One crossing, left to right, when the whole box has passed the line (line_counter's default anchors).
    frames = table(settings, "frames", face_key)
    counts = [(f["frame_idx"], json.loads(f["outputs"])) for f in frames]
    crossed_at = [i for i, out in counts if out["line_count_in"] == 1]
    assert counts[-1][1]["line_count_in"] == 1 and all(out["line_count_out"] == 0 for _, out in counts)
    passed = min(d["frame_idx"] for d in detections if d["x"] - d["width"] / 2 > LINE_X)
    assert crossed_at[0] in (passed - 1, passed, passed + 1), (crossed_at[0], passed)

    assert table(settings, "detections", keys["one_runner.mp4"]) == []  # no false faces on the textured blocks
    assert {f["workflow_version"] for f in table(settings, "frames", keys["one_runner.mp4"])} == {face_version}
    walkers = table(settings, "detections", keys["two_walkers.mp4"])
    assert {d["class_name"] for d in walkers} == {"motion"} and {d["workflow_version"] for d in walkers} == {motion_version}
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("frame_predictions"), asset_partitions=[face_key]), limit=1
    ).records[0]
    assert latest.asset_materialization.metadata["source"].value == "faces"

    # The nightly backfill compares each video with its own drop folder's workflow.
    states = {s.key: s.status for s in classify_partitions(instance, motion_version, {"faces": face_version})}
    assert set(states.values()) == {"done"}
    states = {s.key: s.status for s in classify_partitions(instance, motion_version, {"faces": "inline:changed"})}
    assert states == {keys[FACE_SAMPLE.name]: "stale", keys["one_runner.mp4"]: "stale", keys["two_walkers.mp4"]: "done"}


def photo_box(frame_idx: int) -> tuple[float, float, float, float]:
    [obj] = FACE_SAMPLE.objects
    cx, cy, w, h = FACE_SAMPLE.truth_boxes(frame_idx)[obj.name]
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2

