"""The one small interface every inference backend implements, and the types it speaks.

A backend turns a probed video into a stream of per-frame predictions pushed into a sink (the
Parquet writer). It never writes files itself, so every backend produces the same tables.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import dagster as dg

from video_assets.backends.ledger_db import LedgerDatabase, PostgresDatabase, SqliteDatabase
from video_assets.failures import VideoError
from video_assets.ingest.probe import VideoProbe


class BackendError(VideoError):
    """Inference failed for one video. The message names the video and what to do.

    `permanent` means retrying cannot help until a person acts (a failed or ambiguous paid job, a
    budget, a rejected request); otherwise the step is retried with backoff.
    """


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
    # The BGR picture the model saw, where the backend has it (self-hosted): kept for the preview.
    image: Any = field(default=None, compare=False, repr=False)


class PredictionSink(Protocol):
    def add_frame(self, frame: FramePrediction) -> None: ...


@dataclass(frozen=True)
class BackendIdentity:
    """Written on every row, so a change of workflow is visible in the data and its lineage."""

    backend: str
    workflow_version: str


class VideoBackend(ABC):
    """What `frame_predictions` calls; one implementation per registered kind (backends/registry.py)."""

    @abstractmethod
    def identity(self) -> BackendIdentity:
        """The backend kind and the version of what it runs."""

    def frames_expected(self, video: VideoProbe) -> int:
        """How many frames this backend means to process (every frame, unless it samples)."""
        return video.media.frame_count

    @abstractmethod
    def predict(self, video: VideoProbe, sink: PredictionSink, log: logging.Logger) -> None:
        """Push every processed frame of `video` into `sink`, in order; raise BackendError on failure."""

    def max_runtime_s(self, video: VideoProbe) -> float:
        """How long a run of this video may take before run monitoring fails it (its worker is presumed
        dead): generous, at 2 frames per second, the speed of a heavy model on a small CPU."""
        return STARTUP_ALLOWANCE_S + self.frames_expected(video) / SLOWEST_FPS


STARTUP_ALLOWANCE_S = 300.0
SLOWEST_FPS = 2.0


@dataclass(frozen=True)
class BuildContext:
    """What every backend may need besides its own fields."""

    api_key: str | None  # ROBOFLOW_API_KEY, resolved when the run starts
    state_dir: Path  # durable state of this installation (job ledgers live here on one machine)
    run_id: str | None  # the Dagster run, when there is one
    ledger_dsn: str | None = None  # Postgres (many machines): every machine's job ledgers in one place

    def open_ledger(self, name: str, schema: str) -> LedgerDatabase:
        """A job ledger's database: `<state_dir>/<name>.sqlite`, or the cluster's Postgres."""
        if self.ledger_dsn:
            return PostgresDatabase(self.ledger_dsn, name, schema)
        return SqliteDatabase(self.state_dir / f"{name}.sqlite", name, schema)


@dataclass(frozen=True)
class BackendKind:
    """One entry of the backend registry (backends/registry.py)."""

    name: str  # the `kind` users choose (VIDEO_ASSETS_BACKEND, run config)
    description: str  # where the workflow runs, and which frames
    config: type[dg.Config]  # its flat fields, mixed into the `backend` resource; a field's `env` names its variable
    build: Callable[[Any, BuildContext], VideoBackend]  # (backend resource, context) -> the implementation
    steps: Callable[[], list[dg.AssetsDefinition]] | None = None  # assets that run before frame_predictions
    warm_up: Callable[[Any], None] | None = None  # run once per run-worker process, before its first run
    runs_workflow_files: bool = False  # it runs the inline spec `workflow_file` names (so a source may have its own)
