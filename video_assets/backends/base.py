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
    """Inference failed for one video. The message names the video and what to do."""


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

    def predict(self, video: VideoProbe, sink: PredictionSink, log: logging.Logger) -> None:
        """Push every processed frame of `video` into `sink`, in order; raise BackendError on failure."""
        raise NotImplementedError
