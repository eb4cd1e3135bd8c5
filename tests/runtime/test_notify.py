"""Notifications through the real daemon and run workers: a receiver that is down never fails a run, and the
notification of a video that failed for good arrives, signed, once the receiver is back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import dagster as dg
import pytest

from servers.webhook_receiver import SECRET, Receiver
from video_assets.settings import WEBHOOK_SECRET_ENV, WEBHOOK_URL_ENV

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def receiver() -> Iterator[Receiver]:
    """Set up before the module's cluster starts, so its daemon sees the webhook variables."""
    started = Receiver().start()
    with pytest.MonkeyPatch.context() as env:
        env.setenv(WEBHOOK_URL_ENV, started.url)
        env.setenv(WEBHOOK_SECRET_ENV, SECRET)
        yield started
    started.stop()


def test_a_dead_receiver_fails_no_run_and_hears_of_the_failed_video_once_back(cluster, receiver, samples_dir, tmp_path) -> None:
    good = cluster.drop(samples_dir / "empty_hallway.mp4", "empty_hallway.mp4")
    assert cluster.wait_for_end(good).status == dg.DagsterRunStatus.SUCCESS  # the sensors have been ticking since
    receiver.stop()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 100)
    bad = cluster.drop(broken, "broken.mp4")
    another = cluster.drop(samples_dir / "one_runner.mp4", "one_runner.mp4")
    assert cluster.wait_for_end(bad).status == dg.DagsterRunStatus.FAILURE
    assert cluster.wait_for_end(another).status == dg.DagsterRunStatus.SUCCESS  # while the receiver is down
    assert receiver.received == []

    receiver.start()
    deadline = time.monotonic() + 120  # the health sensor delivers every 15 s, after the failed try's backoff
    while time.monotonic() < deadline and not receiver.received:
        cluster.services.check()
        time.sleep(1)
    [got] = receiver.received
    assert got.signature_ok and got.event == "video_failed" and got.body["details"]["partition"] == bad
    assert got.body["details"]["file"] == "broken.mp4" and "broken.mp4" in got.body["title"]
