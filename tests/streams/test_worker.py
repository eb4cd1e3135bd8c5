"""The worker's accounting, fed InferencePipeline's own status updates and frames in the order it emits them.

The live tests (test_live.py) show the same on real streams; this one pins the exact numbers:
which frames count as dropped, where a gap starts and ends, and what caused it.
"""

import logging
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import supervision as sv

from video_assets.backends.base import BackendIdentity
from video_assets.backends.self_hosted import import_inference_pipeline
from video_assets.streams.cameras import load_camera_config
from video_assets.streams.segments import SegmentRecorder
from video_assets.streams.store import CameraStore
from video_assets.streams.worker import CameraWorker

LOG = logging.getLogger("test")
T_PREVIOUS = datetime(2026, 11, 26, 18, 50, tzinfo=timezone.utc)
T = datetime(2026, 11, 26, 19, 0, 5, tzinfo=timezone.utc)


class Feed:
    """Calls the worker's callbacks like InferencePipeline's threads would, with InferencePipeline's own types."""

    def __init__(self, worker: CameraWorker):
        import_inference_pipeline(offline=True)  # OFFLINE_MODE before streamvision fixes its configuration
        from streamvision.camera import entities, video_source

        self.worker, self.entities, self.states = worker, entities, video_source.StreamState

    def status(self, event: str, at: datetime, **payload) -> None:
        local = at.astimezone().replace(tzinfo=None)  # InferencePipeline stamps updates with datetime.now()
        update = self.entities.StatusUpdate(local, self.entities.UpdateSeverity.INFO, event, payload, "video_source")
        self.worker._on_status(update)

    def state(self, previous: str, new: str, at: datetime) -> None:
        self.status("SOURCE_STATE_UPDATE", at, previous_state=self.states[previous], new_state=self.states[new])

    def capture(self, frame_id: int, at: datetime) -> None:
        self.status("FRAME_CAPTURED", at, frame_id=frame_id, frame_timestamp=at - timedelta(seconds=1), source_id=0)

    def predict(self, frame_id: int, boxes: int = 0) -> None:
        detections = sv.Detections(
            xyxy=np.array([[10.0, 20.0, 50.0, 80.0]] * boxes).reshape(-1, 4),
            confidence=np.ones(boxes),
            class_id=np.zeros(boxes, dtype=int),
            tracker_id=np.arange(1, boxes + 1),
            data={"class_name": np.array(["motion"] * boxes)},
        )
        image = np.zeros((360, 640, 3), np.uint8)
        frame = self.entities.VideoFrame(image, frame_id, datetime(2000, 1, 1), fps=15.0, source_id=0)
        self.worker._on_prediction({"predictions": detections, "line_count_in": frame_id}, frame)


@pytest.fixture
def worker(tmp_path) -> CameraWorker:
    (tmp_path / "cameras.toml").write_text(
        'segment_seconds = 60\n[cameras.gate]\nurl = "rtsp://cam.local/s"\ngap_after_s = 2\n'
    )
    store = CameraStore(root=str(tmp_path / "streams"), config_file=str(tmp_path / "cameras.toml"))
    previous_run = SegmentRecorder(store, "gate", BackendIdentity("self_hosted", "inline:old"), 60)
    previous_run.add_frame(T_PREVIOUS, (), {})
    previous_run.commit_due(force=True)
    config = load_camera_config(tmp_path / "cameras.toml")
    return CameraWorker(config.get("gate"), config, store, LOG)


def committed(worker: CameraWorker, table: str) -> list[dict]:
    worker.recorder.commit_due(force=True)
    store, hour = worker.store, T.replace(minute=0, second=0)
    return [row for seg in store.segments("gate", hour) for row in store.segment_table(seg, table).to_pylist()]


def test_drops_gaps_and_reconnects_are_accounted_exactly(worker) -> None:
    feed = Feed(worker)
    feed.state("NOT_STARTED", "INITIALISING", T)
    feed.state("INITIALISING", "RUNNING", T)
    for i in range(1, 6):  # frames 3 and 4 are read but never processed (dropped)
        feed.capture(i, T + timedelta(seconds=0.1 * i))
    for i in (1, 2, 5):
        feed.predict(i, boxes=1 if i == 5 else 0)
    # The stream breaks: one failed restart, then a successful one, 10 s after the last frame.
    transitions = ["RUNNING", "ENDED", "RESTARTING", "INITIALISING", "ERROR", "RESTARTING", "INITIALISING", "RUNNING"]
    for previous, new in zip(transitions, transitions[1:]):
        feed.state(previous, new, T + timedelta(seconds=2))
    feed.capture(6, T + timedelta(seconds=10.5))
    feed.capture(7, T + timedelta(seconds=10.6))
    feed.predict(6)
    feed.predict(7)

    frames = committed(worker, "frames")
    received = [T + timedelta(seconds=s) for s in (0.1, 0.2, 0.5, 10.5, 10.6)]
    assert [(f["frame_idx"], f["frame_ts"]) for f in frames] == list(enumerate(received))  # the time it was read
    assert [f["outputs"] for f in frames][2] == '{"line_count_in": 5}'
    [box] = committed(worker, "detections")
    assert (box["frame_idx"], box["x"], box["y"], box["width"], box["height"]) == (2, 30.0, 50.0, 40.0, 60.0)
    gaps = committed(worker, "camera_gaps")
    assert [(g["gap_start"], g["gap_end"], g["cause"], g["reconnect_attempts"]) for g in gaps] == [
        (T_PREVIOUS, T + timedelta(seconds=0.1), "worker_restart", 0),  # no worker recorded in between
        (T + timedelta(seconds=0.5), T + timedelta(seconds=10.5), "reconnect", 2),
    ]
    [segment] = committed(worker, "camera_segments")
    assert (segment["frames_processed"], segment["frames_dropped"], segment["reconnects"]) == (5, 2, 1)
    assert (segment["width"], segment["height"], segment["source_fps"]) == (640, 360, 15.0)
    status = worker.health.snapshot()
    assert (status.frames_received, status.frames_processed, status.frames_dropped) == (7, 5, 2)
    assert (status.gaps, status.reconnects, status.state) == (2, 1, "streaming")


def test_a_short_silence_is_not_a_gap_and_a_long_one_without_reconnect_is_a_stall(worker) -> None:
    feed = Feed(worker)
    for i, seconds in enumerate((0, 1.9, 3.8, 9.0), start=1):
        feed.capture(i, T + timedelta(seconds=seconds))
        feed.predict(i)
    gaps = [(g["duration_s"], g["cause"]) for g in committed(worker, "camera_gaps")]
    assert gaps == [((T - T_PREVIOUS).total_seconds(), "worker_restart"), (pytest.approx(5.2), "stall")]


def test_the_status_is_rewritten_at_once_when_the_state_changes_and_else_at_most_every_status_every_s(worker) -> None:
    worker._write_status()
    first = worker.store.read_status("gate")
    assert first is not None and worker.store.status_every_s == 1.0  # on one machine; 5 s in an object store
    worker.health.add_received()
    worker._write_status()  # the same state, within the interval: the file is not rewritten
    assert worker.store.read_status("gate") == first
    worker.health.set_state("reconnecting")
    worker._write_status()
    assert worker.store.read_status("gate").state == "reconnecting"
