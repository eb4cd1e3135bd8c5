"""raw_video -> frame_predictions -> video_summary, materialized on a real instance with real files.

The four files are processed once for the module: `settings` and `instance` are overridden at module
scope, so every other fixture (defs, materialize) works on that one home and instance.
"""

import shutil

import dagster as dg
import duckdb
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from video_assets.definitions import build_definitions
from video_assets.ingest.library import VideoLibrary
from video_assets.settings import Settings


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    settings = Settings(home=tmp_path_factory.mktemp("processed") / "home", sensor_interval_s=1)
    settings.inbox.mkdir(parents=True)
    return settings


@pytest.fixture(scope="module")
def instance(settings):
    settings.dagster_home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(settings.dagster_home)) as instance:
        yield instance


@pytest.fixture(scope="module")
def processed(settings, instance, samples_dir):
    """Two good videos and two bad files, each registered and run once, as the sensor would."""
    for name in ("two_walkers.mp4", "empty_hallway.mp4"):
        shutil.copy2(samples_dir / name, settings.inbox / name)
    (settings.inbox / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    (settings.inbox / "zero.mp4").write_bytes(b"")
    library = VideoLibrary.from_settings(settings)
    keys = {f.relative_path: library.key_for(f) for f in library.scan()}
    instance.add_dynamic_partitions("videos", list(keys.values()))
    defs = build_definitions(settings)
    videos = [defs.get_assets_def("raw_video"), defs.get_assets_def("frame_predictions")]
    results = {
        name: dg.materialize(videos, partition_key=key, instance=instance, resources=defs.resources, raise_on_error=False)
        for name, key in keys.items()
    }
    return keys, results


def test_good_videos_land_as_parquet_with_every_frame(processed, settings, sample, fixed_mtime) -> None:
    keys, results = processed
    walkers = sample("two_walkers.mp4")
    assert results["two_walkers.mp4"].success and results["empty_hallway.mp4"].success
    [event] = results["two_walkers.mp4"].asset_materializations_for_node("frame_predictions")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta["frames_expected"] == meta["frames_processed"] == walkers.frames
    assert meta["frames_missing"] == 0 and meta["tracks"] == 2 and meta["backend"] == "self_hosted"
    [probe_event] = results["two_walkers.mp4"].asset_materializations_for_node("raw_video")
    assert probe_event.metadata["frame_count"].value == walkers.frames
    assert probe_event.metadata["codec"].value == "h264"

    root = settings.predictions_dir
    frames = ds.dataset(root / "frames", format="parquet").to_table()
    detections = ds.dataset(root / "detections", format="parquet").to_table()
    walker_frames = frames.filter(pc.field("video_id") == keys["two_walkers.mp4"])
    assert sorted(walker_frames.column("frame_idx").to_pylist()) == list(range(walkers.frames))
    walker_detections = detections.filter(pc.field("video_id") == keys["two_walkers.mp4"])
    assert meta["detections"] == walker_detections.num_rows == pc.sum(walker_frames.column("detection_count")).as_py()
    first = walker_frames.filter(pc.field("frame_idx") == 0).to_pylist()[0]
    assert first["frame_ts"].timestamp() == pytest.approx(fixed_mtime - walkers.frames / walkers.fps)
    hallway = frames.filter(pc.field("video_id") == keys["empty_hallway.mp4"])
    assert hallway.num_rows == sample("empty_hallway.mp4").frames  # processed, nothing detected
    assert pc.sum(hallway.column("detection_count")).as_py() == 0


def test_bad_files_fail_only_their_own_partition(processed, settings, failure_message) -> None:
    keys, results = processed
    assert not results["corrupt.mp4"].success and not results["zero.mp4"].success
    assert "corrupt.mp4 cannot be decoded as video" in failure_message(results["corrupt.mp4"])
    assert "zero.mp4 is empty (0 bytes)" in failure_message(results["zero.mp4"])
    written = {p.parent.name for p in settings.predictions_dir.rglob("*.parquet")}
    assert written == {f"video_id={keys['two_walkers.mp4']}", f"video_id={keys['empty_hallway.mp4']}"}


def test_summary_model_matches_an_independent_count(processed, settings, defs, materialize, sample) -> None:
    keys, _ = processed
    result = materialize(defs, names=("video_summary",))
    assert result.success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        rows = conn.execute(
            "select video_id, frames_processed, detections, tracks, classes, fps, backend from video_summary"
        ).fetchall()
    detections = ds.dataset(settings.predictions_dir / "detections", format="parquet").to_table().to_pylist()
    expected = []
    for name in ("two_walkers.mp4", "empty_hallway.mp4"):
        mine = [d for d in detections if d["video_id"] == keys[name]]
        expected.append(
            (
                keys[name],
                sample(name).frames,
                len(mine),
                len({d["tracker_id"] for d in mine}),
                ", ".join(sorted({d["class_name"] for d in mine})),
                float(sample(name).fps),
                "self_hosted",
            )
        )
    assert sorted(rows) == sorted(expected)


def test_rerun_replaces_instead_of_duplicating(processed, settings, defs, materialize) -> None:
    keys, _ = processed
    before = ds.dataset(settings.predictions_dir / "detections", format="parquet").count_rows()
    assert materialize(defs, keys["two_walkers.mp4"]).success
    assert ds.dataset(settings.predictions_dir / "detections", format="parquet").count_rows() == before

