"""Progress of a long frame_predictions step in its log: frames done of expected, speed and time left."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from video_assets.backends.base import FramePrediction, PredictionSink

EVERY_S = 10.0


class ProgressLog:
    """A PredictionSink in front of the writer that logs a line every EVERY_S seconds (and nothing else)."""

    def __init__(
        self,
        sink: PredictionSink,
        expected: int,
        log: logging.Logger,
        video_id: str,
        every_s: float = EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.sink, self.expected, self.log, self.video_id = sink, expected, log, video_id
        self.every_s, self.clock = every_s, clock
        self.started = self.last = clock()
        self.done = 0

    def add_frame(self, frame: FramePrediction) -> None:
        self.sink.add_frame(frame)
        self.done += 1
        now = self.clock()
        if now - self.last >= self.every_s:
            self.last = now
            self.log.info(self.line(now))

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        fps = self.done / elapsed
        left = max(self.expected - self.done, 0)
        eta = f"{left / fps:.0f} s left" if fps > 0 else "time left unknown"
        percent = f" ({100 * self.done / self.expected:.0f} %)" if self.expected else ""
        return f"{self.video_id}: {self.done} of {self.expected} frames{percent}, {fps:.1f} frames/s, {eta}"
