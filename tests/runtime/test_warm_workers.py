"""Runs on one warm worker process: per-video state never leaks between runs, and a workflow change between
runs is honoured without restarting the worker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


import dagster as dg
import pytest

from video_assets.backends.self_hosted import spec_hash

pytestmark = pytest.mark.slow
WORKERS = 1  # every run of this module goes to the same worker process
DETECTION_COLUMNS = ["frame_idx", "x", "y", "width", "height", "tracker_id", "class_name", "confidence"]


def same_frames_other_bytes(source: Path, target: Path) -> Path:
    """The same encoded frames in a new container (another title): another file, another video key."""
    command = ["ffmpeg", "-v", "error", "-i", str(source), "-c", "copy", "-metadata", f"title={target.stem}", str(target)]
    subprocess.run(command, check=True)
    return target


def last_outputs(cluster, key: str) -> dict:
    return json.loads(cluster.rows("frames", key, ["outputs"])[-1]["outputs"])


def test_the_same_clip_twice_in_one_warm_worker_gives_identical_rows(cluster, samples_dir, tmp_path) -> None:
    first = cluster.drop(samples_dir / "two_walkers.mp4", "walkers_a.mp4")
    run_first = cluster.wait_for_end(first)
    second = cluster.drop(same_frames_other_bytes(samples_dir / "two_walkers.mp4", tmp_path / "b.mp4"), "walkers_b.mp4")
    run_second = cluster.wait_for_end(second)

    assert first != second
    assert run_first.status == run_second.status == dg.DagsterRunStatus.SUCCESS
    assert cluster.worker_pid(run_first.run_id) == cluster.worker_pid(run_second.run_id)  # one warm process
    detections = cluster.rows("detections", first, DETECTION_COLUMNS)
    assert len(detections) > 200
    # Tracker ids, line counters and zone state start fresh for every video: nothing carried over.
    assert cluster.rows("detections", second, DETECTION_COLUMNS) == detections
    assert {d["tracker_id"] for d in detections} == {0, 1}  # numbered from the start in both
    assert cluster.rows("frames", second, ["frame_idx", "outputs"]) == cluster.rows("frames", first, ["frame_idx", "outputs"])
    assert (last_outputs(cluster, second)["line_count_in"], last_outputs(cluster, second)["line_count_out"]) == (1, 1)


def test_a_workflow_change_between_runs_is_honoured(cluster, samples_dir, tmp_path) -> None:
    workflow = Path(cluster.settings.backend.values["workflow_file"])
    before = cluster.drop(samples_dir / "one_runner.mp4", "runner.mp4")
    run_before = cluster.wait_for_end(before)
    spec = json.loads(workflow.read_text())
    # Move the counting line to x=100, which no detected object crosses in two_walkers (motion detection
    # starts at frame 31, when the left walker is already past it; the right one never gets there).
    spec["inputs"][1]["default_value"] = [[100, 0], [100, 360]]
    workflow.write_text(json.dumps(spec))

    after = cluster.drop(same_frames_other_bytes(samples_dir / "two_walkers.mp4", tmp_path / "c.mp4"), "walkers_c.mp4")
    run_after = cluster.wait_for_end(after)

    assert run_before.status == run_after.status == dg.DagsterRunStatus.SUCCESS
    assert cluster.worker_pid(run_before.run_id) == cluster.worker_pid(run_after.run_id)  # not restarted
    new_version = f"inline:{spec_hash(spec)}"
    assert cluster.rows("frames", before, ["workflow_version"])[0]["workflow_version"] != new_version
    assert {r["workflow_version"] for r in cluster.rows("frames", after, ["workflow_version"])} == {new_version}
    assert (last_outputs(cluster, after)["line_count_in"], last_outputs(cluster, after)["line_count_out"]) == (0, 0)
    materialization = cluster.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("frame_predictions"), asset_partitions=[after]), limit=1
    ).records[0]
    assert materialization.asset_materialization.metadata["workflow_version"].value == new_version
    # The worker loads the code location for each run, so the recorded code version follows the change too.
    assert materialization.asset_materialization.tags["dagster/code_version"] == new_version
