"""Live cameras end to end: real RTSP and HLS servers on 127.0.0.1, killed mid-stream and brought back.

The worker runs as a real process with the real InferencePipeline and the shipped workflow. Each
scenario: stream, lose the server, get it back, SIGTERM. Then the committed segments are checked
(no duplicate rows, the gap recorded where it happened, every frame accounted for), and the HLS
recording goes on through the real sensor, camera_window and the SQL models.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import dagster as dg
import duckdb
import pyarrow.dataset as ds
import pytest

from servers.live_servers import CameraProcess, HlsServer, RtspServer, short_gop_video, wait_for
from video_assets.definitions import build_definitions
from video_assets.settings import Settings
from video_assets.streams.sensor import SENSOR_NAME
from video_assets.streams.store import CameraStore

pytestmark = pytest.mark.live

PASSWORD = "pw-Zq81xK"  # in the HLS camera's URL: must never be written anywhere
OUTAGE_S = 4.0  # how long a server stays down once the worker has noticed


@pytest.fixture(scope="session")
def stream_video(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return short_gop_video(samples_dir / "two_walkers.mp4", tmp_path_factory.mktemp("stream") / "walkers.mp4")


@dataclass
class Recording:
    home: Path
    camera: str
    exit_code: int
    before_stop: dict
    final: dict
    down_at: datetime
    noticed_at: datetime  # when the worker said the camera was down: after its last frame before the outage
    up_at: datetime

    @property
    def store(self) -> CameraStore:
        return CameraStore(root=str(self.home / "streams"), config_file=str(self.home / "cameras.toml"))

    def table(self, name: str) -> list[dict]:
        """Every committed segment's rows of one table, in commit order."""
        store = self.store
        segments = [s for hour in store.windows(self.camera) for s in store.segments(self.camera, hour)]
        return [row for s in segments for row in store.segment_table(s, name).to_pylist()]


def record_through_an_outage(
    home: Path,
    camera: str,
    start: Callable[[], CameraProcess],
    go_down: Callable[[], None],
    come_back: Callable[[], None],
    first_up: Callable[[], None] | None = None,
) -> Recording:
    """Stream, take the server down, bring it back, stop with SIGTERM. `first_up`: start the server only
    once the worker has failed to connect to it (a camera that is down when its worker starts)."""
    process = start()
    try:
        if first_up is not None:
            waiting = process.wait_status(lambda s: s["state"] == "waiting", "the worker to find the camera down")
            assert "Cannot connect" in waiting["last_error"] or "connect" in waiting["last_error"].lower(), waiting
            first_up()
        process.wait_status(lambda s: s["frames_processed"] >= 45, "45 processed frames")
        down_at = datetime.now(timezone.utc)
        go_down()
        process.wait_status(lambda s: s["state"] != "streaming", "the worker to notice the outage")
        noticed_at = datetime.now(timezone.utc)
        time.sleep(OUTAGE_S)
        processed = process.status()["frames_processed"]
        up_at = datetime.now(timezone.utc)
        come_back()
        process.wait_status(
            lambda s: s["last_frame_ts"]
            and datetime.fromisoformat(s["last_frame_ts"]) > up_at
            and s["frames_processed"] >= processed + 45,
            "45 more frames after the server came back",
        )
        before_stop = process.status()
        exit_code = process.terminate()
        return Recording(home, camera, exit_code, before_stop, process.status(), down_at, noticed_at, up_at)
    finally:
        process.kill()


def assert_no_duplicates_and_in_order(frames: list[dict]) -> None:
    keys = [(f["video_id"], f["frame_idx"]) for f in frames]
    assert len(keys) == len(set(keys))
    by_hour: dict[str, list[int]] = {}
    for f in frames:
        by_hour.setdefault(f["video_id"], []).append(f["frame_idx"])
    assert all(idx == list(range(len(idx))) for idx in by_hour.values())  # 0.. without holes, in commit order
    stamps = [f["frame_ts"] for f in frames]
    assert all(a < b for a, b in zip(stamps, stamps[1:]))
    assert all(
        f["frame_ts"]
        == datetime.fromisoformat(f["video_id"].split("@")[1] + ":00:00+00:00") + timedelta(seconds=f["time_offset_s"])
        for f in frames[:50]
    )


def assert_every_frame_committed(recording: Recording) -> None:
    assert recording.exit_code == 0, recording.final
    assert recording.final["state"] == "stopped"
    segments = recording.table("camera_segments")
    assert len(segments) >= 3
    assert (
        sum(s["frames_processed"] for s in segments)
        == recording.final["frames_processed"]
        >= recording.before_stop["frames_processed"]
    )
    assert sum(s["frames_dropped"] for s in segments) == recording.final["frames_dropped"]
    # Every frame read from the camera was either processed or counted as dropped.
    assert recording.final["frames_processed"] + recording.final["frames_dropped"] == recording.final["frames_received"]
    assert not list(recording.home.rglob("*.tmp"))


# -- RTSP: every frame processed, so the gap lies exactly between two recorded frames ---------------


def test_rtsp_camera_recovers_from_a_server_restart_and_records_the_gap(tmp_path, stream_video) -> None:
    server = RtspServer(stream_video, tmp_path / "rtsp")
    home = tmp_path / "home"
    home.mkdir()
    (home / "cameras.toml").write_text(
        "segment_seconds = 2\n"
        f'[cameras.gate]\nurl = "{server.url}"\nmode = "every_frame"\nrtsp_transport = "udp"\n'
        "gap_after_s = 1.0\nread_timeout_s = 2\n"
    )
    try:
        recording = record_through_an_outage(
            home, "gate", lambda: CameraProcess.worker(home, "gate"), server.stop, server.start, first_up=server.start
        )
    finally:
        server.stop()

    assert_every_frame_committed(recording)
    frames = recording.table("frames")
    assert_no_duplicates_and_in_order(frames)
    # every_frame: nothing is dropped while streaming (at SIGTERM, frames still in the decoding buffer would be)
    assert recording.before_stop["frames_dropped"] == 0
    outage = [g for g in recording.table("camera_gaps") if g["gap_end"] >= recording.up_at]
    assert len(outage) == 1, recording.table("camera_gaps")
    [gap] = outage
    assert gap["cause"] == "reconnect" and gap["reconnect_attempts"] >= 1
    # Frames are stamped when decoded: on a loaded machine the decoder may still be seconds behind the
    # server when it stops, so the last frame before the gap is bounded by the worker's notice, not the stop.
    assert recording.down_at - timedelta(seconds=10) < gap["gap_start"] <= recording.noticed_at
    assert gap["duration_s"] == pytest.approx((gap["gap_end"] - gap["gap_start"]).total_seconds())
    stamps = [f["frame_ts"] for f in frames]
    i = stamps.index(gap["gap_start"])  # the gap runs from the last frame before it to the first after it
    assert stamps[i + 1] == gap["gap_end"]
    assert sum(s["reconnects"] for s in recording.table("camera_segments")) >= 1


def test_a_worker_whose_supervisor_died_commits_and_stops(tmp_path, stream_video) -> None:
    """The supervisor passes its pid on the worker's command line; an orphaned worker stops on its own."""
    server = RtspServer(stream_video, tmp_path / "rtsp")
    home = tmp_path / "home"
    home.mkdir()
    (home / "cameras.toml").write_text(f'segment_seconds = 2\n[cameras.gate]\nurl = "{server.url}"\nrtsp_transport = "udp"\n')
    server.start()
    supervisor = CameraProcess.supervisor(home, "gate")
    try:
        worker_pid = supervisor.wait_status(lambda s: s["frames_processed"] >= 15, "15 processed frames")["pid"]
        command = Path(f"/proc/{worker_pid}/cmdline").read_bytes().split(b"\0")
        assert f"--supervisor-pid={supervisor.process.pid}".encode() in command
        os.kill(supervisor.process.pid, signal.SIGKILL)  # no SIGTERM reaches the worker: it must notice alone
        final = wait_for(lambda: (s := supervisor.status())["state"] == "stopped" and s, "the orphaned worker to stop")
        wait_for(lambda: not Path(f"/proc/{worker_pid}").exists() or _zombie(worker_pid), "the worker process to exit")
    finally:
        supervisor.kill()
        server.stop()
    store = CameraStore(root=str(home / "streams"), config_file=str(home / "cameras.toml"))
    segments = [row for hour in store.windows("gate") for row in store.segment_rows("gate", hour)]
    assert sum(s["frames_processed"] for s in segments) == final["frames_processed"] >= 15  # all committed


def _zombie(pid: int) -> bool:
    """Exited but not yet reaped by its (new) parent."""
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")


# -- HLS: through the supervisor, realtime with max_fps, then Dagster and SQL --------------------


@pytest.fixture(scope="module")
def hls_recording(tmp_path_factory, stream_video) -> Recording:
    folder = tmp_path_factory.mktemp("hls")
    server = HlsServer(stream_video, folder / "www")
    home = folder / "home"
    home.mkdir()
    url = server.url.replace("http://", "http://viewer:${HLS_PASSWORD}@")
    (home / "cameras.toml").write_text(
        f'segment_seconds = 2\n[cameras.lobby]\nurl = "{url}"\nmode = "realtime"\nmax_fps = 10\ngap_after_s = 3.0\n'
    )
    server.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("HLS_PASSWORD", PASSWORD)  # the supervisor and its worker inherit it
            return record_through_an_outage(
                home, "lobby", lambda: CameraProcess.supervisor(home, "lobby"), server.stop_http, server.start_http
            )
    finally:
        server.stop()


def test_hls_camera_recovers_and_accounts_for_every_frame(hls_recording) -> None:
    assert_every_frame_committed(hls_recording)
    assert_no_duplicates_and_in_order(hls_recording.table("frames"))
    assert hls_recording.final["frames_dropped"] > 0  # max_fps 10 on a 15 fps camera
    gaps = [g for g in hls_recording.table("camera_gaps") if g["gap_end"] >= hls_recording.up_at]
    assert [g["cause"] for g in gaps] == ["reconnect"]
    assert hls_recording.down_at - timedelta(seconds=10) < gaps[0]["gap_start"] <= hls_recording.noticed_at
    inside = [f for f in hls_recording.table("frames") if gaps[0]["gap_start"] < f["frame_ts"] < gaps[0]["gap_end"]]
    assert inside == []


def test_the_camera_password_is_never_written(hls_recording) -> None:
    assert "viewer:${HLS_PASSWORD}@" in (hls_recording.home / "cameras.toml").read_text()
    written = [p for p in hls_recording.home.rglob("*") if p.is_file() and p.name != "cameras.toml"]
    assert any(p.suffix == ".log" for p in written) and any(p.suffix == ".parquet" for p in written)
    assert [p for p in written if PASSWORD.encode() in p.read_bytes()] == []
    assert hls_recording.final["url"].startswith("http://***@127.0.0.1:")


def test_camera_hours_are_published_by_the_sensor_and_republishing_replaces(hls_recording, tmp_path) -> None:
    settings = Settings(home=hls_recording.home, sensor_interval_s=1)
    defs = build_definitions(settings)
    sensor = defs.get_sensor_def(SENSOR_NAME)

    def tick(instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
        with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources) as c:
            return sensor(c)

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        first = tick(instance)
        [add] = first.dynamic_partitions_requests
        assert (add.partitions_def_name, list(add.partition_keys)) == ("cameras", ["lobby"])
        instance.add_dynamic_partitions("cameras", ["lobby"])
        hours = hls_recording.store.windows("lobby")
        assert [r.partition_key for r in first.run_requests] == [f"lobby|{h:%Y-%m-%d-%H}:00" for h in hours]

        again = tick(instance, first.cursor)
        assert again.run_requests == []  # nothing new was committed
        [observation] = again.asset_events
        assert observation.metadata["worker_state"].value == "stopped"
        assert observation.metadata["frames_processed"].value == hls_recording.final["frames_processed"]

        window = defs.get_assets_def("camera_window")
        for request in first.run_requests * 2:  # the second pass re-publishes: it must replace, not add
            result = dg.materialize(
                [window], partition_key=request.partition_key, instance=instance, resources=defs.resources
            )
            assert result.success
        metadata = {k: v.value for k, v in result.asset_materializations_for_node("camera_window")[0].metadata.items()}

    predictions = hls_recording.home / "predictions"
    published = ds.dataset(predictions / "frames", format="parquet").to_table().to_pylist()
    assert sorted((f["video_id"], f["frame_idx"]) for f in published) == sorted(
        (f["video_id"], f["frame_idx"]) for f in hls_recording.table("frames")
    )
    assert ds.dataset(predictions / "detections", format="parquet").count_rows() == len(
        hls_recording.table("detections")
    )
    assert ds.dataset(predictions / "camera_gaps", format="parquet").count_rows() == len(
        hls_recording.table("camera_gaps")
    )
    videos = sorted(
        ds.dataset(predictions / "videos", format="parquet").to_table().to_pylist(), key=lambda v: v["video_id"]
    )
    assert [v["video_id"] for v in videos] == [f"lobby@{h:%Y-%m-%dT%H}" for h in hours]
    assert all(v["source"] == "lobby" and v["codec"] == "hls" and PASSWORD not in v["file"] for v in videos)
    for video in videos:  # 1 / fps is the time one processed frame stands for
        assert video["fps"] == pytest.approx(15.0 * video["frames_processed"] / video["frames_expected"])
    last = videos[-1]
    assert metadata["frames_processed"] == last["frames_processed"]
    assert metadata["gaps"] == len([g for g in hls_recording.table("camera_gaps") if g["video_id"] == last["video_id"]])
    assert (
        metadata["last_frame_ts"]
        == max(f["frame_ts"] for f in published if f["video_id"] == last["video_id"]).isoformat()
    )


def test_sql_models_include_the_camera(hls_recording, tmp_path) -> None:
    settings = Settings(home=hls_recording.home, sensor_interval_s=1)
    defs = build_definitions(settings)
    store = hls_recording.store
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("cameras", ["lobby"])
        for hour in store.windows("lobby"):
            key = f"lobby|{hour:%Y-%m-%d-%H}:00"
            assert dg.materialize(
                [defs.get_assets_def("camera_window")], partition_key=key, instance=instance, resources=defs.resources
            ).success
        sql = dg.materialize(
            list(defs.assets), selection=dg.AssetSelection.groups("sql"), instance=instance, resources=defs.resources
        )
        assert sql.success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        health = conn.execute(
            "select camera, hour, frames_processed, frames_dropped, gaps, gap_seconds, reconnects "
            "from camera_health order by hour"
        ).fetchall()
        summary = conn.execute(
            "select video_id, frames_processed, frames_expected from video_summary where source = 'lobby'"
        ).fetchall()
        crossings = conn.execute(
            "select hour_utc, counter, crossings from line_crossings_per_hour where source = 'lobby'"
        ).fetchall()
    segments, gaps = hls_recording.table("camera_segments"), hls_recording.table("camera_gaps")
    expected = []
    for hour in store.windows("lobby"):
        mine = [s for s in segments if s["window_start"] == hour]
        hour_gaps = [g for g in gaps if g["video_id"] == f"lobby@{hour:%Y-%m-%dT%H}"]
        expected.append(
            (
                "lobby",
                hour,
                sum(s["frames_processed"] for s in mine),
                sum(s["frames_dropped"] for s in mine),
                len(hour_gaps),
                round(sum(g["duration_s"] for g in hour_gaps), 3),
                sum(s["reconnects"] for s in mine),
            )
        )
    assert health == expected
    assert sum(row[1] for row in summary) == hls_recording.final["frames_processed"]
    assert sum(row[2] for row in summary) == hls_recording.final["frames_received"]
    # A camera's line counters run on across its hours: crossings are the counter's increments.
    expected_crossings: dict = {}
    previous: dict = {}
    for frame in sorted(hls_recording.table("frames"), key=lambda f: f["frame_ts"]):
        for counter, total in json.loads(frame["outputs"]).items():
            if counter.endswith(("count_in", "count_out")):
                key = (frame["frame_ts"].replace(minute=0, second=0, microsecond=0), counter)
                step = total - previous.get(counter, 0)
                expected_crossings[key] = expected_crossings.get(key, 0) + (step if step >= 0 else total)
                previous[counter] = total
    assert {(hour, counter): n for hour, counter, n in crossings} == expected_crossings
