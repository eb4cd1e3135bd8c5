"""Logs: a service's open log is rotated (copied, gzipped, truncated) while the service keeps writing to it;
archives and logs nobody writes any more go by age and size."""

import dataclasses
import gzip
import sys
import time
from datetime import UTC, datetime

from video_assets.retention.sweep import carry_out, plan_retention
from video_assets.runtime.services import Service
from video_assets.settings import Keep, RetentionSettings

# Writes lines 1..100 through its stdout (the service's log), waits for `go`, then writes 101..200 on the same fd.
WRITER = """
import pathlib, sys, time
go = pathlib.Path(sys.argv[1])
for n in range(1, 101):
    print(f"line {n:04d}", flush=True)
while not go.exists():
    time.sleep(0.05)
for n in range(101, 201):
    print(f"line {n:04d}", flush=True)
"""


def only_logs(settings, keep: Keep, rotate_bytes: int):
    forever = Keep()
    retention = RetentionSettings(segments=forever, logs=keep, log_rotate_bytes=rotate_bytes, runs=forever,
                                  compute_logs=forever, sources=forever)  # fmt: skip
    return dataclasses.replace(settings, retention=retention)


def wait_for_lines(path, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_bytes().splitlines()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {count} lines")


def test_a_running_services_log_is_rotated_and_it_keeps_writing_at_the_start(settings, instance, tmp_path) -> None:
    settings = only_logs(settings, Keep(days=14), rotate_bytes=500)  # 100 lines are 1,000 bytes
    log = settings.logs_dir / "daemon.log"
    go = tmp_path / "go"
    service = Service("writer", [sys.executable, "-c", WRITER, str(go)], log)  # opened for appending, as the daemon's
    service.start({})
    try:
        wait_for_lines(log, 100)
        plan = plan_retention(settings, instance, datetime.now(UTC))
        assert [(a.kind, a.verb, a.what) for a in plan.actions] == [("logs", "rotate", "logs/daemon.log")]
        carry_out(plan, settings, print)
        go.touch()
        assert service.process.wait(timeout=30) == 0
    finally:
        service.kill_group()
        service.close()
    [archive] = (settings.logs_dir / "archive").glob("daemon.log.*.gz")
    archived = gzip.decompress(archive.read_bytes()).decode().splitlines()
    current = log.read_bytes()
    assert b"\0" not in current  # the writer went on at the new end: no hole of zeros where the old content was
    assert archived == [f"line {n:04d}" for n in range(1, 101)]
    assert current.decode().splitlines() == [f"line {n:04d}" for n in range(101, 201)]


def test_archives_and_idle_logs_go_by_age_and_size_a_log_in_use_never(settings, instance, age) -> None:
    logs = settings.logs_dir
    (logs / "archive").mkdir(parents=True)
    old_archive = logs / "archive" / "daemon.log.20260101T000000Z.gz"
    old_archive.write_bytes(b"x" * 100)
    age(old_archive, 20)
    new_archive = logs / "archive" / "workers.log.20261101T000000Z.gz"
    new_archive.write_bytes(b"y" * 100)
    old_process = logs / "process-20260101-000000.log"
    old_process.write_text("done\n")
    age(old_process, 30)
    idle_camera = logs / "cameras" / "removed-camera.log"
    idle_camera.parent.mkdir()
    idle_camera.write_text("x" * 300)
    age(idle_camera, 3)
    in_use = logs / "daemon.log"
    in_use.write_text("z" * 300)  # written just now
    settings = only_logs(settings, Keep(days=14, bytes=350), rotate_bytes=10**9)
    done = carry_out(plan_retention(settings, instance, datetime.now(UTC)), settings, print)
    removed = sorted(a.what for a in done.actions)
    # 20 and 30 days old: by age; then the oldest of the rest until they fit in 350 bytes (300 + 100 > 350)
    assert removed == ["logs/archive/daemon.log.20260101T000000Z.gz", "logs/cameras/removed-camera.log", "logs/process-20260101-000000.log"]
    assert not old_archive.exists() and new_archive.exists() and in_use.exists()
