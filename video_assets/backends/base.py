"""The one small interface every inference backend implements.

A backend turns a probed video into a stream of per-frame predictions pushed into a sink (the
Parquet writer). It never writes files itself, so every backend produces the same tables.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import dagster as dg

from video_assets.ingest.probe import VideoProbe


# Metadata flag on a dagster.Failure that no retry can fix (an unreadable file): not retried by the
# step retry policy nor by the nightly backfill.
PERMANENT = "permanent"


class BackendError(Exception):
    """Inference failed for one video. The message names the video and what to do.

    `permanent` means retrying cannot help until a person acts (a failed or ambiguous paid job, a
    budget, a rejected request); otherwise the step is retried with backoff.
    """

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Detection:
    """One box, Roboflow's convention: centre x, y and width, height in pixels."""

    class_name: str
    class_id: int
    confidence: float | None
    x: float
    y: float
    width: float
    height: float
    tracker_id: int | None = None

    @classmethod
    def from_roboflow(cls, box: dict[str, Any]) -> Detection:
        """A box as Roboflow serialises it (hosted results, inference server): centre x, y, width, height, class."""
        tracker = box.get("tracker_id")
        return cls(
            class_name=str(box.get("class", box.get("class_name", ""))),
            class_id=int(box.get("class_id", -1)),
            confidence=float(box["confidence"]) if box.get("confidence") is not None else None,
            x=float(box["x"]),
            y=float(box["y"]),
            width=float(box["width"]),
            height=float(box["height"]),
            tracker_id=int(tracker) if tracker is not None else None,
        )


@dataclass(frozen=True)
class FramePrediction:
    frame_idx: int  # 0-based index in the source video
    time_offset_s: float  # position in the video
    detections: tuple[Detection, ...] = ()
    outputs: dict[str, Any] = field(default_factory=dict)  # the workflow's scalar outputs (counts, flags)


class PredictionSink(Protocol):
    def add_frame(self, frame: FramePrediction) -> None: ...


@dataclass(frozen=True)
class BackendIdentity:
    """Written on every row, so a change of workflow is visible in the data and its lineage."""

    backend: str
    workflow_version: str


class VideoBackend(dg.ConfigurableResource):
    """Base class of the backend resources; bind a subclass as the `backend` resource."""

    def identity(self) -> BackendIdentity:
        raise NotImplementedError

    def frames_expected(self, video: VideoProbe) -> int:
        """How many frames this backend means to process (every frame, unless it samples)."""
        return video.media.frame_count

    def predict(self, video: VideoProbe, sink: PredictionSink, log: logging.Logger) -> None:
        """Push every processed frame of `video` into `sink`, in order; raise BackendError on failure."""
        raise NotImplementedError
