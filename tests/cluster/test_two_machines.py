"""Many machines: runs routed by queue land on the machine that took them, with no shared disk; a dead
machine's run is failed by run monitoring and left for the backfill; a Redis restart loses no run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from video_assets.predictions.assets import FRAME_PREDICTIONS
from video_assets.predictions.backfill import classify_partitions
from video_assets.runs import MAX_RUNTIME_TAG, failure_of

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("video-assets"))


def sql(query: str) -> list[str]:
    """`video-assets sql` on the control plane: the rows of the answer as CSV lines (none on an error)."""
    answer = subprocess.run([CLI, "sql", query, "--csv"], capture_output=True, text=True, timeout=120)
    return answer.stdout.splitlines()[1:] if answer.returncode == 0 else []


def host_of(instance: dg.DagsterInstance, key: str) -> str:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=FRAME_PREDICTIONS, asset_partitions=[key]), limit=1
    ).records
    return records[0].asset_materialization.metadata["host"].value


def long_video(source: Path, target: Path, loops: int) -> Path:
    """The sample played `loops` times in one file: a run long enough to kill a machine under it."""
    command = ["ffmpeg", "-v", "error", "-stream_loop", str(loops - 1), "-i", str(source), "-c", "copy", str(target)]
    subprocess.run(command, check=True)
    return target


def test_runs_spread_over_two_worker_machines_by_queue_with_no_shared_disk(many_machines, samples_dir) -> None:
    cluster, settings = many_machines, many_machines.settings
    yaml_text = (settings.dagster_home / "dagster.yaml").read_text()
    assert "postgres_db" in yaml_text and cluster.settings.cluster.postgres.password_env in yaml_text
    cluster.start_worker("worker-cpu", "--concurrency", "1")
    cluster.start_worker("worker-gpu", "--queue", "gpu", "--concurrency", "1")
    settings.camera_config_path.write_text('[cameras.gate]\nurl = "rtsp://127.0.0.1:9/gate"\n')
    cluster.record_camera("camera-host", "gate", frames=5)  # its segment goes to the store, not to a shared folder
    faces = settings.extra_drop_folders[0].path
    keys = {
        "inbox/two_walkers.mp4": cluster.drop(samples_dir / "two_walkers.mp4", settings.inbox, "two_walkers.mp4"),
        "inbox/one_runner.mp4": cluster.drop(samples_dir / "one_runner.mp4", settings.inbox, "one_runner.mp4"),
        "faces/hallway.mp4": cluster.drop(samples_dir / "empty_hallway.mp4", faces, "hallway.mp4"),
    }
    runs = cluster.wait_for_end(list(keys.values()))
    assert {r.status for r in runs.values()} == {dg.DagsterRunStatus.SUCCESS}, cluster.logs()
    # the faces drop folder's video went to the gpu queue, whose only worker is worker-gpu; the rest to worker-cpu
    assert runs[keys["faces/hallway.mp4"]].tags.get("dagster-celery/queue") == "gpu"
    assert {name: host_of(cluster.instance, key) for name, key in keys.items()} == {
        "inbox/two_walkers.mp4": "worker-cpu",
        "inbox/one_runner.mp4": "worker-cpu",
        "faces/hallway.mp4": "worker-gpu",
    }
    # the SQL models, built by automation on a worker (one model a run), are published to the store,
    # and the control plane answers from them
    cluster.wait_for(
        lambda: sql("select count(*) from video_summary where source <> 'gate'") == ["3"], "video_summary of 3 videos"
    )
    # the camera hour: listed by the control plane's camera sensor, published by a worker, answered by SQL
    cluster.wait_for(
        lambda: sql("select frames_processed from camera_health where camera = 'gate'") == ["5"], "the camera's hour"
    )
    assert cluster.store.glob(f"{cluster.prefix}/streams/gate/*/*/camera_segments.parquet")
    # every byte in the object store: the videos (uploaded once by the control plane), their Parquet,
    # compute logs; no Parquet on the control plane's disk
    for key in keys.values():
        assert cluster.store.exists(f"{cluster.prefix}/videos/{key}") and cluster.store.exists(f"{cluster.prefix}/videos/{key}.json")
        assert cluster.store.exists(f"{cluster.prefix}/predictions/videos/video_id={key}/part-0.parquet")
    assert cluster.store.find(f"{cluster.prefix}/compute-logs"), "no compute log in the object store"
    assert not list(settings.home.rglob("*.parquet"))


def test_a_dead_worker_machine_fails_its_run_and_the_backfill_takes_it_again(many_machines, samples_dir, tmp_path) -> None:
    cluster, settings = many_machines, many_machines.settings
    cluster.start_worker("worker-a", "--concurrency", "1")
    key = cluster.drop(long_video(samples_dir / "two_walkers.mp4", tmp_path / "long.mp4", 60), settings.inbox, "long.mp4")
    started = lambda: (run := cluster.runs([key])[key]) is not None and run.status == dg.DagsterRunStatus.STARTED  # noqa: E731
    cluster.wait_for(started, "run started on worker-a")
    cluster.kill_machine("worker-a")  # power lost: no process of it is left to report anything
    run = cluster.runs([key])[key]
    assert run is not None
    # Its runtime limit comes from the video's length (minutes here); shorten it so run monitoring acts now.
    cluster.instance.add_run_tags(run.run_id, {MAX_RUNTIME_TAG: "5"})
    [ended] = cluster.wait_for_end([key], timeout_s=120).values()
    assert ended.status == dg.DagsterRunStatus.FAILURE
    message, permanent = failure_of(cluster.instance, ended.run_id)
    assert not permanent, message  # a dead machine is not the video's fault: the nightly backfill runs it again
    states = {s.key: s for s in classify_partitions(cluster.instance, "any")}
    assert states[key].status == "failed"


def test_runs_waiting_in_redis_survive_a_redis_restart(many_machines, samples_dir) -> None:
    cluster, settings = many_machines, many_machines.settings
    keys = [
        cluster.drop(samples_dir / "two_walkers.mp4", settings.inbox, "a.mp4"),
        cluster.drop(samples_dir / "one_runner.mp4", settings.inbox, "b.mp4"),
    ]
    handed_over = lambda: all(r is not None and r.status == dg.DagsterRunStatus.STARTING for r in cluster.runs(keys).values())  # noqa: E731
    cluster.wait_for(handed_over, "both runs handed to Celery")  # no worker yet: the tasks wait in Redis
    cluster.redis.restart()
    cluster.start_worker("worker-late", "--concurrency", "1")
    runs = cluster.wait_for_end(keys)
    assert {r.status for r in runs.values()} == {dg.DagsterRunStatus.SUCCESS}, cluster.logs()
