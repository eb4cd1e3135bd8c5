"""The HTTP client of Roboflow's APIs against the fake video API: retries, Retry-After, streamed uploads, redacted errors."""

from __future__ import annotations

import logging
import os
import tracemalloc
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Callable

import pytest
import requests

from video_assets.roboflow.http import RetryPolicy, RoboflowHttp, RoboflowRequestError


@pytest.fixture
def client(api_key) -> Callable[..., tuple[RoboflowHttp, list[float]]]:
    """A client that records the waits it would sleep instead of sleeping."""

    def make(policy: RetryPolicy | None = None) -> tuple[RoboflowHttp, list[float]]:
        waits: list[float] = []
        return RoboflowHttp(api_key, policy or RetryPolicy(backoff_s=0.01), logging.getLogger("test"), sleep=waits.append), waits

    return make


@pytest.mark.parametrize("header", ["3", "http-date"])
def test_retry_after_is_honoured(header, fake_api, client, api_key) -> None:
    value = "3" if header == "3" else format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    fake_api.inject("status", status=429, retry_after=value)
    http, waits = client()
    with pytest.raises(RoboflowRequestError, match="HTTP 404"):  # after the wait, the real answer: no such job
        http.json("check job", "GET", fake_api.url + "/videoinfer", idempotent=True, params={"api_key": api_key, "job_id": "x"})
    assert len(waits) == 1
    assert waits[0] == 3.0 if header == "3" else 25 < waits[0] <= 30


def test_backoff_doubles_and_gives_up_after_the_attempts(fake_api, client, api_key) -> None:
    fake_api.inject("status", times=4, status=502)
    http, waits = client(RetryPolicy(attempts=4, backoff_s=1.0, max_backoff_s=3.0))
    with pytest.raises(RoboflowRequestError, match=r"HTTP 502 fault injected \(after 4 attempts\)"):
        http.json("check job", "GET", fake_api.url + "/videoinfer", idempotent=True, params={"api_key": api_key, "job_id": "x"})
    assert len(waits) == 3
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0 and 1.5 <= waits[2] <= 3.0  # jittered, capped


def test_an_unreachable_server_is_retried_even_for_a_submission(client, api_key) -> None:
    http, waits = client(RetryPolicy(attempts=2, backoff_s=0.01, connect_timeout_s=1))
    with pytest.raises(RoboflowRequestError) as raised:
        http.json("submit the job", "POST", "http://127.0.0.1:9/videoinfer/", idempotent=False, params={"api_key": api_key})
    assert len(waits) == 1 and not raised.value.ambiguous  # nothing reached a server: nothing can have been created
    assert api_key not in str(raised.value) and "api_key=***" in str(raised.value)


def test_the_upload_is_streamed_from_disk(fake_api, tmp_path, client, api_key) -> None:
    big = tmp_path / "big.mp4"
    with open(big, "wb") as f:
        for _ in range(32):
            f.write(os.urandom(1 << 20))
    signed = requests.post(fake_api.url + "/video_upload_signed_url", params={"api_key": api_key}, json={"file_name": "big.mp4"}, timeout=5).json()
    http, _ = client()
    tracemalloc.start()
    try:
        http.put_file("upload", signed["signed_url"], big, "application/octet-stream")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [stored] = fake_api.uploads.values()
    assert stored.read_bytes() == big.read_bytes()
    assert peak < 4 * (1 << 20), f"peak {peak} bytes for a 32 MiB upload"
