"""Backends on their own: a probed video without the ingest assets, and the frames a backend delivers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterator

import pytest

from servers.inference_server import inference_server
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


@pytest.fixture(scope="module")
def server_url(tmp_path_factory) -> Iterator[str]:
    """inference's real HTTP server (stream API) on 127.0.0.1, for the tests of one module; about 20 s to start."""
    with inference_server(tmp_path_factory.mktemp("inference_server")) as url:
        yield url
