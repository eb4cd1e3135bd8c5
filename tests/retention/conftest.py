"""Helpers for the retention tests: camera hours recorded (and published) at chosen times, files of a chosen age."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from video_assets.backends.base import BackendIdentity
from video_assets.settings import Settings
from video_assets.storage import LocalStore
from video_assets.streams.segments import SegmentRecorder
from video_assets.streams.store import CameraStore, window_name
from video_assets.streams.window import publish_window

IDENTITY = BackendIdentity("self_hosted", "inline:test")


@pytest.fixture
def cameras(settings: Settings) -> CameraStore:
    return CameraStore(root=str(settings.streams_dir), config_file=str(settings.camera_config_path))


@pytest.fixture
def record_hour(settings: Settings, cameras: CameraStore) -> Callable[..., Path]:
    """Commit `segments` segments of `frames` frames each to a camera hour; publish it unless told not to."""

    def record(camera: str, start: datetime, segments: int = 2, frames: int = 5, publish: bool = True) -> Path:
        recorder = SegmentRecorder(cameras, camera, IDENTITY, 60)
        for s in range(segments):
            for f in range(frames):
                recorder.add_frame(start + timedelta(minutes=s, seconds=f), (), {"n": f})
            recorder.commit_due(force=True)
        if publish:
            publish_window(cameras, LocalStore(settings.predictions_dir), camera, start, None)
        return cameras.camera_dir(camera) / window_name(start)

    return record


@pytest.fixture(scope="session")
def age() -> Callable[[Path, float], Path]:
    """Set a file's (or folder's) modification time `days` in the past."""

    def set_age(path: Path, days: float) -> Path:
        when = time.time() - days * 24 * 3600
        os.utime(path, (when, when))
        return path

    return set_age
