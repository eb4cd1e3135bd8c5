"""Backends on their own: a probed video without the ingest assets, and the frames a backend delivers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import pytest

from video_assets.backends.base import FramePrediction, VideoBackend
from video_assets.ingest.probe import VideoProbe, probe_media


@pytest.fixture(scope="session")
def probe_of() -> Callable[[Path], VideoProbe]:
    """What raw_video would hand a backend for this file."""
    return lambda path: VideoProbe(
        f"{path.stem}-0123456789ab", "inbox", path.name, str(path), path.stat().st_size, "0" * 64, probe_media(path)
    )


@pytest.fixture(scope="session")
def predict_frames(probe_of) -> Callable[[VideoBackend, Path | VideoProbe], list[FramePrediction]]:
    """Every frame a backend pushes into its sink for one video, in order (its errors propagate)."""

    def predict(backend: VideoBackend, video: Path | VideoProbe) -> list[FramePrediction]:
        frames: list[FramePrediction] = []

        class ListSink:
            def add_frame(self, frame: FramePrediction) -> None:
                frames.append(frame)

        backend.predict(video if isinstance(video, VideoProbe) else probe_of(video), ListSink(), logging.getLogger("test"))
        return frames

    return predict
