"""The drop-folder sensor against real files and a real Dagster instance."""

import json
import os
import shutil
from pathlib import Path

import dagster as dg

from video_assets.definitions import build_definitions
from video_assets.ingest.keys import hash_of_key
from video_assets.ingest.sensor import FILE_TAG, SENSOR_NAME, SOURCE_TAG
from video_assets.settings import DropFolder, Settings


class SensorHarness:
    """Evaluates the sensor like the daemon would: cursor carried over, partitions added."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.defs, self.instance, self.cursor = defs, instance, None

    def tick(self) -> dg.SensorResult:
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, definitions=self.defs, resources=self.defs.resources
        ) as context:
            result = self.defs.get_sensor_def(SENSOR_NAME)(context)
        for request in result.dynamic_partitions_requests:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursor = result.cursor
        return result

    def runs(self, result: dg.SensorResult) -> dict[str, dg.RunRequest]:
        return {r.partition_key: r for r in result.run_requests}


def test_stable_videos_become_partitions_and_runs(settings, defs, instance, samples_dir, drop_sample) -> None:
    drop_sample("two_walkers.mp4")
    drop_sample("one_runner.mp4", as_name="cam 1/one runner.mp4")
    (settings.inbox / "notes.txt").write_text("not a video")
    for ignored in (".hidden.mp4", "upload.mp4.part", "draft.mp4~", "~lock.mp4", "x.mp4.crdownload"):
        shutil.copy(samples_dir / "empty_hallway.mp4", settings.inbox / ignored)
    (settings.inbox / ".trash").mkdir()
    shutil.copy(samples_dir / "empty_hallway.mp4", settings.inbox / ".trash" / "old.mp4")
    harness = SensorHarness(defs, instance)

    first = harness.tick()
    assert first.run_requests == [] and "Waiting for 3 file(s)" in first.skip_reason.skip_message

    second = harness.tick()
    runs = harness.runs(second)
    assert sorted(runs) == sorted(instance.get_dynamic_partitions("videos"))
    assert len(runs) == 2
    by_file = {r.tags[FILE_TAG]: r for r in runs.values()}
    assert set(by_file) == {"two_walkers.mp4", "cam 1/one runner.mp4"}
    walker = by_file["two_walkers.mp4"]
    assert walker.partition_key.startswith("two_walkers.mp4-") and walker.run_key == walker.partition_key
    assert walker.tags[SOURCE_TAG] == "inbox"
    assert by_file["cam 1/one runner.mp4"].partition_key.startswith("cam_1_one_runner.mp4-")
    assert len(harness.cursor) < 1000  # small however many files the folder holds

    third = harness.tick()
    assert third.run_requests == [] and third.skip_reason.skip_message == "No new videos."


def test_identical_content_is_processed_once(defs, instance, drop_sample) -> None:
    drop_sample("two_walkers.mp4", as_name="a.mp4")
    drop_sample("two_walkers.mp4", as_name="b copy.mp4")
    harness = SensorHarness(defs, instance)
    harness.tick()
    assert len(harness.tick().run_requests) == 1
    drop_sample("two_walkers.mp4", as_name="later/c.mp4")
    harness.tick()
    assert harness.tick().run_requests == []
    assert len(instance.get_dynamic_partitions("videos")) == 1


def test_a_file_being_written_is_waited_for(settings, defs, instance, samples_dir) -> None:
    data = (samples_dir / "one_runner.mp4").read_bytes()
    target = settings.inbox / "growing.mp4"
    harness = SensorHarness(defs, instance)
    target.write_bytes(data[:1000])
    harness.tick()
    with open(target, "ab") as handle:
        handle.write(data[1000:5000])
    assert harness.tick().run_requests == []
    with open(target, "ab") as handle:
        handle.write(data[5000:])
    assert harness.tick().run_requests == []
    [request] = harness.tick().run_requests
    assert hash_of_key(request.partition_key) == _sha256(target)[:12]


def test_a_changed_file_becomes_a_new_video(settings, defs, instance, drop_sample) -> None:
    harness = SensorHarness(defs, instance)
    drop_sample("one_runner.mp4", as_name="clip.mp4")
    harness.tick()
    [first] = harness.tick().run_requests
    os.replace(drop_sample("empty_hallway.mp4", as_name="tmp/x.mp4"), settings.inbox / "clip.mp4")
    harness.tick()
    [second] = harness.tick().run_requests
    assert first.partition_key != second.partition_key
    assert first.partition_key.split("-")[0] == second.partition_key.split("-")[0] == "clip.mp4"


def test_every_drop_folder_tags_its_source(tmp_path, instance, samples_dir) -> None:
    dock = tmp_path / "dock"
    dock.mkdir()
    settings = Settings(home=tmp_path / "home", extra_drop_folders=(DropFolder("dock", dock),), sensor_interval_s=1)
    shutil.copy2(samples_dir / "one_runner.mp4", dock / "truck.mp4")
    harness = SensorHarness(build_definitions(settings), instance)
    first = harness.tick()
    assert "Waiting for 1 file(s)" in first.skip_reason.skip_message  # the missing inbox is just empty
    [request] = harness.tick().run_requests
    assert request.tags[SOURCE_TAG] == "dock" and request.tags[FILE_TAG] == "truck.mp4"


def test_cursor_is_valid_json_with_a_watermark(defs, instance, drop_sample) -> None:
    drop_sample("two_walkers.mp4")
    harness = SensorHarness(defs, instance)
    harness.tick()
    harness.tick()
    cursor = json.loads(harness.cursor)
    assert set(cursor) == {"watermark_ns", "pending", "recent"}


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
