"""`video-assets process` end to end: a persistent instance, the real sensor machinery, real runs."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from video_assets.cli.process import _interrupted
from video_assets.samples import MovingObject, SampleVideo, write_sample
from video_assets.settings import Settings

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).with_name("video-assets"))


def run_cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIDEO_ASSETS_HOME": str(home), "VIDEO_ASSETS_SENSOR_INTERVAL": "1", **(env or {})}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=600)


def write_slowly(source: Path, target: Path, chunks: int = 8, pause_s: float = 0.5) -> threading.Thread:
    """Start a copy that takes a few seconds, like `cp` of a large file."""
    data = source.read_bytes()
    step = len(data) // chunks + 1
    target.write_bytes(data[:step])

    def rest() -> None:
        with open(target, "ab") as handle:
            for i in range(1, chunks):
                time.sleep(pause_s)
                handle.write(data[i * step : (i + 1) * step])
                handle.flush()

    thread = threading.Thread(target=rest)
    thread.start()
    return thread


def summary_lines(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines() if line.startswith("inbox/")}


def test_process_settles_runs_and_summarizes(tmp_path: Path, samples_dir: Path, processes_using) -> None:
    home = tmp_path / "home"
    inbox = Settings(home=home).inbox
    inbox.mkdir(parents=True)
    for name in ("two_walkers.mp4", "empty_hallway.mp4"):
        shutil.copy2(samples_dir / name, inbox / name)
    shutil.copy2(samples_dir / "two_walkers.mp4", inbox / "walkers copy.mp4")
    (inbox / "bad.mp4").write_bytes(b"this is not a video\n" * 100)
    (inbox / "notes.txt").write_text("hello")
    writer = write_slowly(samples_dir / "one_runner.mp4", inbox / "slow.mp4")

    first = run_cli(home, "process")
    writer.join()
    assert first.returncode == 1, first.stdout + first.stderr
    lines = summary_lines(first.stdout)
    assert set(lines) == {f"inbox/{n}" for n in ("bad.mp4", "empty_hallway.mp4", "notes.txt", "slow.mp4", "two_walkers.mp4", "walkers")}
    for name in ("two_walkers.mp4", "empty_hallway.mp4", "slow.mp4"):
        assert " success " in lines[f"inbox/{name}"], first.stdout
    assert "150/150" in lines["inbox/two_walkers.mp4"] and "120/120" in lines["inbox/slow.mp4"]
    assert " failed " in lines["inbox/bad.mp4"] and "bad.mp4 cannot be decoded as video" in lines["inbox/bad.mp4"]
    assert " duplicate " in lines["inbox/walkers"] and "same content as two_walkers.mp4-" in lines["inbox/walkers"]
    assert " skipped " in lines["inbox/notes.txt"]
    assert first.stdout.strip().splitlines()[-1] == "1 failed, 3 succeeded, 1 duplicate, 1 skipped; 6 file(s) in all"
    assert "STEP_START" not in first.stdout  # Dagster's own logs go to the log file
    assert processes_using(home) == []  # the daemon, code server and run workers were stopped

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        summary = dict(conn.execute("select file, frames_processed from video_summary").fetchall())
    assert summary == {"two_walkers.mp4": 150, "empty_hallway.mp4": 60, "slow.mp4": 120}

    with dg.DagsterInstance.local_temp(str(home / "dagster")) as instance:
        video_runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": "drop_folder_sensor"}))
        assert len(video_runs) == 4  # one per distinct video, launched like the daemon would
        assert all(r.tags["dagster/run_key"] == r.tags["dagster/partition"] for r in video_runs)

        second = run_cli(home, "process")
        assert second.returncode == 1  # bad.mp4 is still there and still failed
        assert " success " in summary_lines(second.stdout)["inbox/slow.mp4"]
        again = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": "drop_folder_sensor"}))
        assert len(again) == 4  # nothing was processed twice


def test_video_assets_process_runs_the_hosted_steps_from_the_environment(tmp_path, samples_dir, fake_api, api_key) -> None:
    """The CLI's sensor-driven runs (separate run processes) pick the hosted backend and its settings from the environment."""
    home = tmp_path / "home"
    (home / "inbox").mkdir(parents=True)
    shutil.copy2(samples_dir / "two_walkers.mp4", home / "inbox" / "two_walkers.mp4")
    env = {
        **os.environ,
        "VIDEO_ASSETS_HOME": str(home),
        "VIDEO_ASSETS_SENSOR_INTERVAL": "1",
        "VIDEO_ASSETS_BACKEND": "hosted",
        "ROBOFLOW_API_KEY": api_key,
        "ROBOFLOW_API_URL": fake_api.url,
        "ROBOFLOW_WORKSPACE": "acme",
        "ROBOFLOW_WORKFLOW": "count-people",
        "VIDEO_ASSETS_POLL_SECONDS": "0.05",
    }
    done = subprocess.run([CLI, "process"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(l for l in done.stdout.splitlines() if l.startswith("inbox/two_walkers.mp4"))
    assert " success " in line and " 50/50 " in line
    assert fake_api.count("submit") == 1 and fake_api.jobs[next(iter(fake_api.jobs))].form == "workflow"
    leaks = [p for p in home.rglob("*") if p.is_file() and api_key.encode() in p.read_bytes()]
    assert leaks == [] and api_key not in done.stdout + done.stderr


def test_process_says_why_when_the_run_workers_cannot_start(tmp_path, samples_dir, processes_using) -> None:
    """A worker process that cannot import what runs need (here: `inference` is broken) is reported at once."""
    home = tmp_path / "home"
    (home / "inbox").mkdir(parents=True)
    shutil.copy2(samples_dir / "empty_hallway.mp4", home / "inbox" / "empty_hallway.mp4")
    broken = tmp_path / "broken"
    (broken / "inference").mkdir(parents=True)
    (broken / "inference" / "__init__.py").write_text("raise ImportError('libcudart.so.12: cannot open shared object file')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(broken), os.environ.get("PYTHONPATH", "")])}
    started = time.monotonic()
    done = run_cli(home, "process", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "The run workers cannot start: ImportError: libcudart.so.12: cannot open shared object file" in done.stdout
    assert time.monotonic() - started < 120
    assert processes_using(home) == []


def test_a_full_queue_folder_fails_the_run_with_the_folder_and_the_cause(tmp_path, samples_dir) -> None:
    home = tmp_path / "home"
    queue = home / "state" / "celery" / "queue"
    queue.mkdir(parents=True)
    (home / "inbox").mkdir()
    shutil.copy2(samples_dir / "empty_hallway.mp4", home / "inbox" / "empty_hallway.mp4")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(queue)], check=True)
    try:
        (queue / "filler").write_bytes(b"\0" * 16 * 1024)
        done = run_cli(home, "process")
    finally:
        subprocess.run(["umount", str(queue)], check=True)
    assert done.returncode == 1, done.stdout + done.stderr
    line = summary_lines(done.stdout)["inbox/empty_hallway.mp4"]
    assert " failed " in line
    assert f"The run queue ({queue}) did not take the run: [Errno 28] No space left on device" in line


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stopping_process_stops_what_it_started_and_fails_the_run_in_progress(
    tmp_path: Path, processes_using, stop
) -> None:
    home = tmp_path / "home"
    inbox = Settings(home=home).inbox
    inbox.mkdir(parents=True)
    # Long enough (600 frames, several seconds) to be still running when the signal is handled.
    write_sample(SampleVideo("long.mp4", frames=600, fps=25, objects=(MovingObject("slow", 40, 180, 0.35, 48, 96, seed=5),)),
                 inbox / "long.mp4")
    env = {**os.environ, "VIDEO_ASSETS_HOME": str(home), "VIDEO_ASSETS_SENSOR_INTERVAL": "1"}
    # Ctrl-C's default action, even when the tests run in the background (where SIGINT is inherited ignored,
    # and a Python that starts with SIGINT ignored never raises KeyboardInterrupt).
    cli = subprocess.Popen([CLI, "process"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    dagster_home = Settings(home=home).dagster_home
    deadline = time.monotonic() + 180
    try:
        # Not dagster.yaml: the CLI writes it before it creates the instance's storage, and two processes that
        # create that storage at once can corrupt it. The daemon is started only once the storage exists.
        while not (Settings(home=home).logs_dir / "daemon.log").exists():
            assert cli.poll() is None and time.monotonic() < deadline, cli.stdout.read()
            time.sleep(0.2)
        with dg.DagsterInstance.local_temp(str(dagster_home)) as instance:
            while not instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
                assert cli.poll() is None and time.monotonic() < deadline, cli.stdout.read()
                time.sleep(0.2)
            cli.send_signal(stop)
            stopped_at = time.monotonic()
            assert cli.wait(timeout=15) == 130
            assert time.monotonic() - stopped_at < 10
            assert "interrupted; the daemon and run workers it started are stopped" in cli.stdout.read()
            time.sleep(0.5)
            assert processes_using(home) == []
            [run] = instance.get_runs()
            assert run.status == dg.DagsterRunStatus.FAILURE  # the nightly backfill re-runs it
    finally:
        if cli.poll() is None:
            cli.kill()


def test_ctrl_c_during_the_in_process_sql_build_stops_process_as_an_interrupt() -> None:
    """Dagster turns Ctrl-C during execute_in_process into a failed run and returns: `process` must still stop
    with exit code 130, not report the build as failed and exit 0."""

    @dg.op
    def slow() -> None:
        time.sleep(5)

    @dg.op
    def broken() -> None:
        raise ValueError("a failing data test")

    @dg.job
    def slow_build() -> None:
        slow()

    @dg.job
    def failing_build() -> None:
        broken()

    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    interrupted = slow_build.execute_in_process(raise_on_error=False)
    timer.join()
    failed = failing_build.execute_in_process(raise_on_error=False)
    assert not interrupted.success and _interrupted(interrupted)
    assert not failed.success and not _interrupted(failed)
