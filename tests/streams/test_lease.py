"""Many machines: one recorder per camera through a lease in a real Redis server."""

from __future__ import annotations

import time

import pytest
import redis as redis_client

from servers.cluster_services import redis
from video_assets.streams.lease import WorkerAlreadyRunning, redis_lease


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


def test_a_second_host_cannot_take_a_camera_that_is_recorded(redis_url) -> None:
    with redis_lease(redis_url, "gate", ttl_s=3) as first:
        with pytest.raises(WorkerAlreadyRunning, match=r"'gate' is already being recorded by pid \d+ on "):
            with redis_lease(redis_url, "gate", ttl_s=3):
                pass
        time.sleep(4)  # longer than the lease: renewal keeps it
        assert not first.lost.is_set()
        with pytest.raises(WorkerAlreadyRunning):
            with redis_lease(redis_url, "gate", ttl_s=3):
                pass
    with redis_lease(redis_url, "gate", ttl_s=3):  # released when the first worker stopped
        pass


def test_a_worker_that_loses_its_lease_is_told_so(redis_url) -> None:
    with redis_lease(redis_url, "dock", ttl_s=1.5) as lease:
        redis_client.Redis.from_url(redis_url).set("video-assets:camera:dock", "pid 1 on elsewhere")  # taken over
        deadline = time.monotonic() + 3
        while not lease.lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lease.lost.is_set()
    # Released only what it held: the other holder's key stays.
    assert redis_client.Redis.from_url(redis_url).get("video-assets:camera:dock") == b"pid 1 on elsewhere"
