"""HostedBackend on its own: building it (for its identity, at load time) needs no key and touches nothing."""

import logging
from datetime import datetime, timezone

import pytest

from video_assets.backends.base import BackendError
from video_assets.backends.hosted.backend import HostedBackend
from video_assets.backends.hosted.ledger import NAME
from video_assets.backends.resource import Backend
from video_assets.ingest.probe import MediaInfo, VideoProbe


def test_without_an_api_key_the_backend_is_built_and_fails_only_when_used(tmp_path, fake_api) -> None:
    hosted = Backend(kind="hosted", model="people-detect/3", api_url=fake_api.url, state_dir=str(tmp_path)).implementation()
    assert isinstance(hosted, HostedBackend)
    assert hosted.identity().workflow_version == "model:people-detect/3"
    assert not (tmp_path / f"{NAME}.sqlite").exists()  # the identity opens no ledger

    media = MediaInfo(10.0, 15.0, 150, 640, 360, "h264", datetime(2026, 1, 1, tzinfo=timezone.utc))
    video = VideoProbe("clip.mp4-0123456789ab", "inbox", "clip.mp4", str(tmp_path / "clip.mp4"), 1, "0" * 64, media)
    assert hosted.estimate(video).frames == 50  # the spend estimate needs no key either
    with pytest.raises(BackendError, match="needs an API key: set ROBOFLOW_API_KEY") as raised:
        hosted.upload(video, logging.getLogger("test"))
    assert raised.value.permanent  # no retry helps until a person sets the key
    assert fake_api.requests == []
