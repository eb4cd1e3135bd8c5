"""A camera worker's status file: written whole, read back as the worker wrote it, judged for health."""

import json
from datetime import datetime, timedelta, timezone

from video_assets.streams.status import worker_health
from video_assets.streams.store import CameraStore


def test_worker_health_reads_the_status_file_and_spots_a_dead_worker(worker_status) -> None:
    now = datetime(2026, 11, 26, 19, 0, 30, tzinfo=timezone.utc)
    status = worker_status(
        state="streaming",
        updated_at=(now - timedelta(seconds=1)).isoformat(),
        last_frame_ts=(now - timedelta(seconds=2)).isoformat(),
        fps=14.5,
        frames_processed=100,
        frames_dropped=3,
        gaps=1,
        gap_seconds=4.2,
    )
    state, metadata = worker_health(status, now)
    assert state == "streaming"
    assert (metadata["seconds_since_last_frame"], metadata["fps"], metadata["frames_dropped"]) == (2.0, 14.5, 3)
    assert (metadata["gaps"], metadata["gap_seconds"], metadata["last_error"]) == (1, 4.2, "")
    stale = worker_status(state="streaming", updated_at=(now - timedelta(minutes=2)).isoformat())
    assert worker_health(stale, now)[0] == "worker not running"
    stopped = worker_status(state="stopped", updated_at=(now - timedelta(days=1)).isoformat())
    assert worker_health(stopped, now)[0] == "stopped"
    assert worker_health(None, now)[0] == "never started"


def test_the_file_round_trips_and_an_unknown_format_reads_as_no_status(tmp_path, worker_status) -> None:
    store = CameraStore(root=str(tmp_path), config_file=str(tmp_path / "cameras.toml"))
    path = tmp_path / "lobby" / "status.json"
    assert store.read_status("lobby") is None  # never written: the worker never started
    status = worker_status(last_error="SourceConnectionError: timed out", reconnects=2)
    store.write_status("lobby", status)
    assert store.read_status("lobby") == status
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temporary file left beside it
    path.write_text(json.dumps({"state": "streaming"}))  # written by another version, fields missing
    assert store.read_status("lobby") is None
    path.write_text("{half")
    assert store.read_status("lobby") is None
