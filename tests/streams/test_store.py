"""The camera store: one worker per camera, held by a lock the kernel releases if the worker dies."""

import pytest

from video_assets.streams.lease import WorkerAlreadyRunning
from video_assets.streams.store import CameraStore


@pytest.fixture
def store(tmp_path) -> CameraStore:
    return CameraStore(root=str(tmp_path / "streams"), config_file=str(tmp_path / "cameras.toml"))


def test_one_worker_per_camera(store) -> None:
    with store.lease("lobby"):
        with pytest.raises(WorkerAlreadyRunning, match="already being recorded by pid"):
            with store.lease("lobby"):
                pass
    with store.lease("lobby"):  # released when the first worker ended
        pass
