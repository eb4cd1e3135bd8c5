"""The drop-folder sensor under the disk guard: no runs while the disk is low, the files taken once space returns."""

import shutil

import dagster as dg

from video_assets.definitions import build_definitions
from video_assets.ingest.sensor import SENSOR_NAME
from video_assets.settings import DiskGuard, Settings

MB = 2**20


def test_no_runs_below_the_threshold_and_the_files_are_taken_when_space_returns(small_disk, samples_dir) -> None:
    settings = Settings(home=small_disk.path / "home", sensor_interval_s=1, disk_guard=DiskGuard(min_free_bytes=4 * MB))
    settings.inbox.mkdir(parents=True)
    shutil.copy2(samples_dir / "empty_hallway.mp4", settings.inbox / "empty_hallway.mp4")
    defs = build_definitions(settings)
    settings.dagster_home.mkdir()
    with dg.instance_for_test(temp_dir=str(settings.dagster_home)) as instance:
        cursor = None

        def tick() -> dg.SensorResult:
            nonlocal cursor
            with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources) as context:
                result = defs.get_sensor_def(SENSOR_NAME)(context)
            cursor = result.cursor or cursor
            return result

        small_disk.fill(leave=2 * MB)
        for _ in range(3):
            low = tick()
            assert low.run_requests == [] and low.dynamic_partitions_requests == [] and low.cursor is None
            reason = low.skip_reason.skip_message
            assert reason.startswith("Not launching runs: disk guard: ") and "below VIDEO_ASSETS_MIN_FREE=4.0 MB" in reason
            assert str(settings.predictions_dir) in reason
        small_disk.clear()
        requested = [r.partition_key for _ in range(2) for r in tick().run_requests]
        assert len(requested) == 1 and requested[0].startswith("empty_hallway.mp4-")
