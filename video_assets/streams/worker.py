"""The ingest worker of one camera: a long-running process that runs InferencePipeline on the stream.

`python -m video_assets.streams.worker <camera>` (started by `video-assets cameras run`, one per camera).
It commits a Parquet segment every `segment_seconds` (published to the camera store; kept in its outbox
while the store is unreachable), rewrites its status file every second (every few seconds in an object
store: CameraStore.status_every_s), and on SIGTERM or SIGINT stops the pipeline and commits what it holds
before exiting 0.

What InferencePipeline does on a live URL, measured (see the README's camera section):
- frame ids count every frame read from the camera and keep counting across reconnects, so a jump in
  the ids of processed frames is the number of frames dropped (buffer full, or `max_fps`);
- its `frame_timestamp` is taken *before* the read that returns the frame, so for HLS it can be a whole
  segment early; the FRAME_CAPTURED status update is sent right *after* the read, so its time is the
  honest "received at", which this worker records as `frame_ts` and uses to find gaps;
- when a read fails the source restarts about once a second, forever; a source that cannot be opened
  at start ends the pipeline instead, so this worker starts a new one (with backoff).

Below the disk guard's free-space threshold (VIDEO_ASSETS_MIN_FREE) the worker stops its pipeline,
commits what it holds, and waits (status `paused`, the reason in `detail`); once space returns it
starts a new pipeline, and the time it did not record becomes a `disk_guard` gap.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from video_assets.backends.self_hosted import SelfHostedBackend, import_inference_pipeline, parse_result
from video_assets.disk_guard import DiskSpace, disk_space
from video_assets.settings import API_KEY_ENV, DiskGuard, Settings, SettingsError, secret
from video_assets.streams.cameras import Camera, CameraConfig, CameraConfigError
from video_assets.streams.lease import WorkerAlreadyRunning
from video_assets.streams.segments import Gap, SegmentRecorder
from video_assets.streams.status import WorkerStatus
from video_assets.streams.store import CameraStore

EXIT_CONFIG = 2  # the camera or its workflow is misconfigured: restarting will not help
EXIT_LOCKED = 3  # another worker records this camera
TICK_S = 1.0
MAX_BACKOFF_S = 30.0
FPS_WINDOW_S = 10.0


class CameraWorker:
    def __init__(
        self,
        camera: Camera,
        config: CameraConfig,
        store: CameraStore,
        log: logging.Logger,
        supervisor_pid: int | None = None,  # stop (cleanly) when this parent process is gone: no orphans
        guard: DiskGuard | None = None,  # VIDEO_ASSETS_MIN_FREE; its default when None
    ):
        self.camera = camera
        self.guard = guard or DiskGuard()
        self.supervisor_pid = supervisor_pid
        self._lease_lost = threading.Event()  # set by the camera's lease if another worker may record it now
        self.store = store
        self.log = log
        self.backend = SelfHostedBackend(
            workflow_file=camera.workflow_file,
            workspace=camera.workspace,
            workflow_id=camera.workflow_id,
            workflow_version_id=camera.workflow_version,
            api_key=secret(API_KEY_ENV),
            workflow_parameters=camera.workflow_parameters,
            detections_output=camera.detections_output,
        )
        self.recorder = SegmentRecorder(store, camera.name, self.backend.identity(), config.segment_s)
        self.health = _Health(camera)
        self._lock = threading.Lock()
        previous = self._latest_segment_row()
        self._last_capture: datetime | None = previous["last_frame_ts"] if previous else None
        self._first_capture = True  # a gap before it spans the time no worker was recording
        self._paused_for_disk = False  # a gap before the next frame spans a pause of the disk guard
        self._low_space: DiskSpace | None = None
        self._attempts_since_capture = 0  # source restarts and new pipelines since the last frame
        self._received_at: dict[int, datetime] = {}  # frame id -> when it was read; until processed
        self._last_frame_id = 0  # of this pipeline; ids start at 1 in each new pipeline
        self._reconnects_pending = 0
        self._ever_streamed = False
        self._session_streamed = False
        self._session_done = threading.Event()
        self._status_written: tuple[float, str, str] | None = None  # when (monotonic), state, detail
        self._publish_error: str | None = None

    def _latest_segment_row(self) -> dict[str, Any] | None:
        """Where the last worker stopped, to record the time no worker was recording as a gap."""
        try:
            return self.recorder.latest_row()
        except Exception as exc:  # the store is unreachable: record anyway, without that gap
            self.log.warning(f"camera {self.camera.name}: could not read its last segment: {type(exc).__name__}: {exc}")
            return None

    def run(self, stop: threading.Event, lease_lost: threading.Event | None = None) -> None:
        """Ingest until `stop` is set (or the supervisor is gone, or the camera's lease is lost); then commit
        everything recorded."""
        if lease_lost is not None:
            self._lease_lost = lease_lost
        # Read by OpenCV when a capture opens; each camera has its own worker process, so its own value.
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = self.camera.capture_options()
        # max_fps then keeps every k-th frame read (k = camera fps / max_fps) instead of throttling on the
        # time between frames, which keeps one frame per burst when HLS delivers a segment at a time.
        os.environ["ENABLE_FRAME_DROP_ON_VIDEO_FILE_RATE_LIMITING"] = "True"
        self._write_status()  # "starting": importing inference takes a few seconds
        pipeline_cls = import_inference_pipeline(offline=not self.backend.uses_saved_workflow)
        backoff = 0.5  # doubled before the first wait
        while not self._should_stop(stop):
            self._check_disk()
            if self._low_space is not None:
                self._pause_until_space(stop)
                continue
            pipeline = self._start_session(pipeline_cls)
            while pipeline is not None and not self._should_stop(stop) and not self._session_done.is_set():
                stop.wait(TICK_S)
                self._tick()
                if self._low_space is not None:
                    break
            if pipeline is not None:
                self._stop_session(pipeline)
            self._tick()
            if self._should_stop(stop) or self._low_space is not None:
                continue
            # The source could not be opened, or the workflow failed: a new pipeline, after a pause.
            backoff = 1.0 if self._session_streamed else min(backoff * 2, MAX_BACKOFF_S)
            self.health.set_state("waiting", f"retrying in {backoff:g} s")
            self._write_status()
            self.log.warning(f"camera {self.camera.name}: the pipeline ended; starting a new one in {backoff:g} s")
            stop.wait(backoff)
            with self._lock:
                self._attempts_since_capture += 1
        self._commit(force=True)
        self.health.set_state("stopped")
        self._write_status()

    def _pause_until_space(self, stop: threading.Event) -> None:
        """Record nothing until the disk has room again (or the worker is stopped); segments held in memory
        are still committed when they can be."""
        assert self._low_space is not None
        self.log.warning(f"camera {self.camera.name}: paused: {self._low_space.reason}")
        self._paused_for_disk = True
        while self._low_space is not None and not self._should_stop(stop):
            self.health.set_state("paused", self._low_space.reason)
            self._tick()
            stop.wait(TICK_S)
            self._check_disk()
        if self._low_space is None:
            self.log.info(f"camera {self.camera.name}: the disk has room again; recording resumes")

    def _check_disk(self) -> None:
        space = disk_space(Path(self.store.root), self.guard)
        self._low_space = space if space.low else None

    def _should_stop(self, stop: threading.Event) -> bool:
        if not stop.is_set() and self.supervisor_pid is not None and os.getppid() != self.supervisor_pid:
            self.log.warning(f"camera {self.camera.name}: its supervisor is gone; stopping")
            stop.set()
        if not stop.is_set() and self._lease_lost.is_set():
            self._error("its lease was lost (another worker may record it now); stopping")
            stop.set()
        return stop.is_set()

    # -- one InferencePipeline ------------------------------------------------------------------

    def _start_session(self, pipeline_cls: Any) -> Any:
        from inference.core.interfaces.camera.video_source import BufferConsumptionStrategy, BufferFillingStrategy

        filling = BufferFillingStrategy.WAIT if self.camera.mode == "every_frame" else BufferFillingStrategy.DROP_OLDEST
        self._session_done.clear()
        self._session_streamed = False
        with self._lock:
            self._received_at.clear()
            self._last_frame_id = 0
        self.health.set_state("connecting")
        try:
            pipeline = pipeline_cls.init_with_workflow(
                video_reference=self.camera.resolved_url(),
                on_prediction=self._on_prediction,
                status_update_handlers=[self._on_status],
                max_fps=self.camera.max_fps,
                source_buffer_filling_strategy=filling,
                source_buffer_consumption_strategy=BufferConsumptionStrategy.LAZY,
                workflows_parameters=self.camera.workflow_parameters or None,
                **self.backend.workflow_arguments(),
            )
            pipeline.start(use_main_thread=False)
        except Exception as exc:
            self._error(f"could not start the workflow: {type(exc).__name__}: {exc}")
            return None
        return pipeline

    def _stop_session(self, pipeline: Any) -> None:
        """terminate() waits for a read in progress (up to the read timeout); join() drains the results."""
        for _ in range(50):
            try:
                pipeline.terminate()
                break
            except Exception as exc:  # StreamOperationNotAllowedError while a source is still opening
                self.log.debug(f"terminate: {exc}; retrying")
                time.sleep(0.2)
        pipeline.join()
        with self._lock:  # read from the camera, then purged from the decoding buffer by terminate()
            unprocessed = max(self._received_at, default=self._last_frame_id) - self._last_frame_id
            last_read = max(self._received_at.values(), default=None)
            self._received_at.clear()
        if unprocessed > 0 and last_read is not None:
            self.recorder.add_dropped(unprocessed, last_read)
            self.health.add_dropped(unprocessed)

    # -- callbacks from InferencePipeline's threads --------------------------------------------

    def _on_status(self, update: Any) -> None:
        event = update.event_type
        if event == "FRAME_CAPTURED":
            self._on_capture(update.payload["frame_id"], update.timestamp.astimezone(UTC))
        elif event == "SOURCE_STATE_UPDATE":
            self._on_source_state(update.payload["previous_state"].value, update.payload["new_state"].value)
        elif event in ("INFERENCE_ERROR", "SOURCE_ERROR"):
            payload = update.payload or {}
            self._error(f"{payload.get('error_type', 'error')}: {payload.get('error_message', payload)}")
        elif event == "INFERENCE_THREAD_FINISHED":
            self._session_done.set()

    def _on_capture(self, frame_id: int, received_at: datetime) -> None:
        """Every frame read from the camera passes here (decoding thread), processed or not."""
        gap = None
        with self._lock:
            silent_s = (received_at - self._last_capture).total_seconds() if self._last_capture else 0.0
            if self._last_capture is not None and silent_s > self.camera.gap_after_s:
                attempts = self._attempts_since_capture
                cause = "worker_restart" if self._first_capture else "reconnect" if attempts else "stall"
                gap = Gap(self._last_capture, received_at, "disk_guard" if self._paused_for_disk else cause, attempts)
            self._last_capture = received_at
            self._first_capture = False
            self._paused_for_disk = False
            self._attempts_since_capture = 0
            self._received_at[frame_id] = received_at
        self.health.add_received()
        if gap is not None:
            self.recorder.add_gap(gap)
            self.health.add_gap(gap)
            self.log.warning(
                f"camera {self.camera.name}: no frames from {gap.start:%H:%M:%S.%f} to {gap.end:%H:%M:%S.%f} UTC "
                f"({gap.duration_s:.1f} s, {gap.cause}, {gap.reconnect_attempts} reconnect attempt(s))"
            )

    def _on_source_state(self, previous: str, new: str) -> None:
        if new == "RESTARTING":
            with self._lock:
                self._attempts_since_capture += 1
            self.health.set_state("reconnecting")
        elif new == "RUNNING":
            if previous == "INITIALISING" and self._ever_streamed:
                with self._lock:
                    self._reconnects_pending += 1
                self.health.reconnected()
            self._ever_streamed = self._session_streamed = True
            self.health.set_state("streaming")

    def _on_prediction(self, result: dict[str, Any], frame: Any) -> None:
        """One processed frame (dispatch thread). Exceptions here would be logged and lost by the pipeline."""
        try:
            with self._lock:
                received_at = self._received_at.pop(frame.frame_id, None) or frame.frame_timestamp.astimezone(UTC)
                for stale in [i for i in self._received_at if i < frame.frame_id]:
                    del self._received_at[stale]
                dropped = max(frame.frame_id - self._last_frame_id - 1, 0)
                self._last_frame_id = frame.frame_id
                reconnects, self._reconnects_pending = self._reconnects_pending, 0
            detections, outputs = parse_result(result, self.camera.detections_output)
            height, width = frame.image.shape[:2]
            self.recorder.add_frame(
                received_at, detections, outputs, dropped, reconnects, (width, height), frame.fps, image=frame.image
            )
            self.health.add_frame(received_at, dropped)
        except Exception as exc:
            self._error(f"could not record a frame: {type(exc).__name__}: {exc}")

    # -- housekeeping on the main thread ----------------------------------------------------------

    def _tick(self) -> None:
        self._commit()
        self._check_disk()
        self._write_status()

    def _commit(self, force: bool = False) -> None:
        try:
            for segment in self.recorder.commit_due(force):
                self.health.add_segment(segment.name)
        except OSError as exc:
            self._error(f"could not commit a segment (kept in memory, retrying): {exc}")
        error = self.recorder.publish_error
        if error and error != self._publish_error:  # said once, not every second while the store is down
            self._error(f"{error} (the segments wait in {self.store.outbox_dir(self.camera.name)}; retrying)")
        elif self._publish_error and not error:
            self.log.info(f"camera {self.camera.name}: the segments that waited are published")
        self._publish_error = error

    def _write_status(self) -> None:
        """Every `status_every_s`, and at once when the state changes."""
        status = self.health.snapshot()
        now = time.monotonic()
        if self._status_written is not None:
            written_at, state, detail = self._status_written
            if (state, detail) == (status.state, status.detail) and now - written_at < self.store.status_every_s:
                return
        try:
            self.store.write_status(self.camera.name, status)
        except Exception as exc:  # a full disk, or an unreachable store: the next tick tries again
            self.log.warning(f"camera {self.camera.name}: could not write its status file: {exc}")
            return
        self._status_written = (now, status.state, status.detail)

    def _error(self, message: str) -> None:
        message = self.camera.redact(message)
        self.health.last_error = message
        self.log.error(f"camera {self.camera.name} ({self.camera.display_url}): {message}")


class _Health:
    """Counters behind status.json: what the CLI and the Dagster sensor show between segments."""

    def __init__(self, camera: Camera):
        self.camera = camera
        self.started_at = datetime.now(UTC)
        self.state, self.detail = "starting", ""
        self.last_frame_ts: datetime | None = None
        self.frames_received = self.frames_processed = self.frames_dropped = 0
        self.reconnects = self.gaps = self.segments = 0
        self.gap_seconds = 0.0
        self.last_segment: str | None = None
        self.last_error: str | None = None
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()

    def set_state(self, state: str, detail: str = "") -> None:
        self.state, self.detail = state, detail

    def add_frame(self, received_at: datetime, dropped: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames_processed += 1
            self.frames_dropped += dropped
            self.last_frame_ts = received_at
            self._recent.append(now)
            while self._recent and self._recent[0] < now - FPS_WINDOW_S:
                self._recent.popleft()

    def add_received(self) -> None:
        with self._lock:
            self.frames_received += 1

    def add_dropped(self, count: int) -> None:
        with self._lock:
            self.frames_dropped += count

    def add_gap(self, gap: Gap) -> None:
        with self._lock:
            self.gaps += 1
            self.gap_seconds += gap.duration_s

    def reconnected(self) -> None:
        with self._lock:
            self.reconnects += 1

    def add_segment(self, name: str) -> None:
        with self._lock:
            self.segments += 1
            self.last_segment = name

    def snapshot(self) -> WorkerStatus:
        now = time.monotonic()
        with self._lock:
            recent = sum(1 for t in self._recent if t >= now - FPS_WINDOW_S)
            return WorkerStatus(
                camera=self.camera.name,
                url=self.camera.display_url,
                mode=self.camera.mode,
                max_fps=self.camera.max_fps,
                pid=os.getpid(),
                state=self.state,
                detail=self.detail,
                started_at=self.started_at.isoformat(),
                updated_at=datetime.now(UTC).isoformat(),
                last_frame_ts=self.last_frame_ts.isoformat() if self.last_frame_ts else None,
                fps=round(recent / FPS_WINDOW_S, 2),
                frames_received=self.frames_received,
                frames_processed=self.frames_processed,
                frames_dropped=self.frames_dropped,
                reconnects=self.reconnects,
                gaps=self.gaps,
                gap_seconds=round(self.gap_seconds, 3),
                segments_committed=self.segments,
                last_segment=self.last_segment,
                last_error=self.last_error,
            )


def main(argv: list[str] | None = None) -> int:
    """Entry point of one worker process; the exit code tells the supervisor whether to restart it."""
    parser = argparse.ArgumentParser(prog="python -m video_assets.streams.worker")
    parser.add_argument("camera")
    parser.add_argument("--supervisor-pid", type=int, help="stop when this process (`cameras run`) is gone")
    args = parser.parse_args(argv)
    name = args.camera
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("video_assets.camera")
    try:
        settings = Settings.from_env()
        store = CameraStore.from_settings(settings)
        config = store.config()
        camera = config.get(name)
        camera.resolved_url()  # a missing ${VARIABLE} is a configuration error: say so now
        worker = CameraWorker(camera, config, store, log, args.supervisor_pid, settings.disk_guard)
    except (SettingsError, CameraConfigError, OSError) as exc:
        log.error(str(exc))
        return EXIT_CONFIG
    except Exception as exc:  # an unreadable workflow file (BackendError) and the like
        log.error(f"camera {name}: {type(exc).__name__}: {exc}")
        return EXIT_CONFIG
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        with store.lease(camera.name) as lease:
            log.info(f"camera {camera.name}: recording {camera.display_url} ({camera.mode}, max_fps={camera.max_fps})")
            worker.run(stop, lease.lost)
    except WorkerAlreadyRunning as exc:
        log.error(str(exc))
        return EXIT_LOCKED
    log.info(f"camera {camera.name}: stopped; every processed frame is committed")
    return 0


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # InferencePipeline can leave a non-daemon reader thread behind; nothing is left to save.
    os._exit(code)
