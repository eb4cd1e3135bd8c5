"""Cameras on many machines: segments and status go through a real S3 server (SeaweedFS), so the camera host,
the control plane's camera sensor and the workers that publish camera hours share no folder."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from video_assets.backends.base import BackendIdentity, Detection
from video_assets.cli import cameras as cameras_cli
from video_assets.predictions.store import PredictionStore
from video_assets.retention.segments import segment_actions
from video_assets.settings import ClusterSettings, PostgresSettings, RedisSettings, Settings, StoreSettings
from video_assets.storage import table_key
from video_assets.streams.segments import SegmentRecorder
from video_assets.streams.sensor import list_windows
from video_assets.streams.store import CameraStore, camera_video_id

HOUR = datetime(2026, 11, 26, 18, tzinfo=UTC)
IDENTITY = BackendIdentity("self_hosted", "inline:test")
BOX = (Detection("person", 0, 0.9, 10.0, 20.0, 4.0, 8.0, tracker_id=1),)


@pytest.fixture
def machines(tmp_path: Path, object_store_server, s3_credentials) -> tuple[Settings, Settings]:
    """A camera host and the control plane: their own homes, one cluster (its store on a fresh prefix)."""
    from servers.cluster_services import BUCKET

    store = StoreSettings(f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}", endpoint=object_store_server.endpoint)
    cluster = ClusterSettings(
        tmp_path / "cluster.toml", PostgresSettings("127.0.0.1"), RedisSettings("redis://127.0.0.1:1/0"), store
    )
    homes = []
    for name in ("camera-host", "control-plane"):
        home = tmp_path / name
        home.mkdir()
        (home / "cameras.toml").write_text('[cameras.lobby]\nurl = "rtsp://viewer:${LOBBY_PASSWORD}@10.0.0.5/s"\n')
        homes.append(Settings(home=home, cluster=cluster))
    return homes[0], homes[1]


def record(recorder: SegmentRecorder, first: int, frames: int) -> None:
    for i in range(first, first + frames):
        recorder.add_frame(HOUR + timedelta(minutes=10, seconds=i), BOX, {"n": i}, size=(640, 360), source_fps=15.0)


def test_segments_recorded_on_a_camera_host_are_listed_and_published_by_the_control_plane(machines) -> None:
    host, control = machines
    recorder = SegmentRecorder(CameraStore.from_settings(host), "lobby", IDENTITY, 60)
    record(recorder, 0, 5)
    [first] = recorder.commit_due(force=True)
    record(recorder, 5, 3)
    [second] = recorder.commit_due(force=True)
    assert recorder.publish_error is None
    assert not any(CameraStore.from_settings(host).outbox_dir("lobby").rglob("*.parquet"))  # all published

    cameras = CameraStore.from_settings(control)
    assert cameras.data().uri().startswith("s3://")
    assert cameras.segments("lobby", HOUR) == [f"lobby/2026-11-26T18/{s.name}" for s in (first, second)]
    assert list_windows(cameras, "lobby", "") == {HOUR: f"2:{second.name}"}  # what the camera sensor sees
    assert not (control.streams_dir / "lobby").exists()  # nothing of the camera on the control plane's disk

    # publish_camera_hour, on any machine: the hour's tables from the segments in the store.
    from video_assets.streams.window import publish_window

    predictions = PredictionStore.from_settings(control).data()
    summary = publish_window(cameras, predictions, "lobby", HOUR, None)
    assert (summary.segments, summary.frames_processed, summary.detections) == (2, 8, 8)
    video_id = camera_video_id("lobby", HOUR)
    frames = predictions.read_table(table_key("frames", video_id)).to_pylist()
    assert [f["frame_idx"] for f in frames] == list(range(8))
    assert [f["frame_ts"] for f in frames] == [HOUR + timedelta(minutes=10, seconds=i) for i in range(8)]
    assert summary.files["videos"].startswith("s3://")

    # Retention removes the published hour's segments from the store.
    [action] = segment_actions(cameras, predictions, control.home, HOUR + timedelta(days=1))
    assert action.what == cameras.data().uri("lobby/2026-11-26T18") and action.bytes > 0
    action.carry_out()
    assert cameras.segments("lobby", HOUR) == [] and cameras.windows("lobby") == []
    assert predictions.read_table(table_key("frames", video_id)).num_rows == 8  # the published rows stay


def test_a_segment_without_its_last_file_is_never_listed(machines, tmp_path: Path) -> None:
    host, control = machines
    store = CameraStore.from_settings(host).data()
    for name in ("detections.parquet", "frames.parquet", "camera_gaps.parquet"):  # camera_segments never came
        store.put_bytes(f"lobby/2026-11-26T18/20261126T181000000000Z-half00/{name}", b"PAR1")
    cameras = CameraStore.from_settings(control)
    assert cameras.windows("lobby") == [HOUR]
    assert cameras.segments("lobby", HOUR) == [] and list_windows(cameras, "lobby", "") == {}


def test_segments_wait_on_the_camera_host_while_the_store_is_down_and_nothing_is_lost(
    machines, object_store_server
) -> None:
    host, control = machines
    cameras = CameraStore.from_settings(control)
    recorder = SegmentRecorder(CameraStore.from_settings(host), "lobby", IDENTITY, 60)
    record(recorder, 0, 4)
    object_store_server.stop()
    try:
        [waiting] = recorder.commit_due(force=True)  # committed to the host's outbox, not published
        assert recorder.publish_error is not None and "could not publish to s3://" in recorder.publish_error
    finally:
        object_store_server.start()
    assert cameras.segments("lobby", HOUR) == []  # no part of it is visible
    record(recorder, 4, 2)  # the numbering goes on from the waiting segment
    later = recorder.commit_due(force=True)
    assert recorder.publish_error is None
    segments = cameras.segments("lobby", HOUR)
    assert segments == [f"lobby/2026-11-26T18/{s.name}" for s in (waiting, *later)]
    frames = [f["frame_idx"] for s in segments for f in cameras.segment_table(s, "frames").to_pylist()]
    assert frames == list(range(6))


def test_cameras_status_reads_the_status_a_camera_host_wrote_to_the_store(machines, worker_status, capsys) -> None:
    host, control = machines
    now = datetime.now(UTC)
    status = worker_status(state="reconnecting", last_frame_ts=(now - timedelta(seconds=3)).isoformat(), gaps=2)
    CameraStore.from_settings(host).write_status("lobby", status)
    assert CameraStore.from_settings(control).read_status("lobby") == status
    assert not (control.streams_dir / "lobby").exists()
    assert cameras_cli.status(control) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("lobby")]
    assert "reconnecting" in row and "***@10.0.0.5" in row and "LOBBY_PASSWORD" not in row
    stale = dataclasses.replace(status, updated_at=(now - timedelta(seconds=20)).isoformat())
    CameraStore.from_settings(host).write_status("lobby", stale)
    assert cameras_cli.status(control) == 0
    assert "worker not running" in capsys.readouterr().out
