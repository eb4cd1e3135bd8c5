"""`video-assets retention [--dry-run]` as a user types it."""

import gzip
import os
import subprocess


def test_dry_run_lists_and_a_run_rotates_a_large_service_log(cli, tmp_path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "workers.log").write_bytes(b"a worker line\n" * 200)  # 2,800 bytes
    env = {**os.environ, "VIDEO_ASSETS_HOME": str(tmp_path), "VIDEO_ASSETS_LOG_ROTATE_SIZE": "1KB"}

    dry = subprocess.run([cli, "retention", "--dry-run"], env=env, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "logs          rotate" in dry.stdout and "logs/workers.log" in dry.stdout
    assert "Would remove 1 item(s), 2.7 KB:" in dry.stdout and "logs: 1 (rotate), 2.7 KB" in dry.stdout
    assert (logs / "workers.log").stat().st_size == 2800 and not (logs / "archive").exists()

    done = subprocess.run([cli, "retention"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Removed 1 item(s), 2.7 KB:" in done.stdout
    [archive] = (logs / "archive").glob("workers.log.*.gz")
    assert gzip.decompress(archive.read_bytes()) == b"a worker line\n" * 200 and (logs / "workers.log").stat().st_size == 0
