"""The hosted client's pieces on their own: contract parsing, retries, streaming upload, redaction, settings."""

from __future__ import annotations

import logging
import os
import tracemalloc
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests

from conftest import API_KEY
from video_assets.backends.hosted.client import HostedHttp, HostedRequestError, RetryPolicy
from video_assets.backends.hosted.contract import (
    ContractError,
    Target,
    parse_job_id,
    parse_results,
    parse_signed_upload,
    parse_status,
    sampled_frames,
)
from video_assets.backends.redact import RedactingFilter, redact
from video_assets.backends.resources import backend_config_from_env
from video_assets.settings import SettingsError

LOG = logging.getLogger("test")


def client(policy: RetryPolicy | None = None) -> tuple[HostedHttp, list[float]]:
    waits: list[float] = []
    return HostedHttp(API_KEY, policy or RetryPolicy(backoff_s=0.01), LOG, sleep=waits.append), waits


def test_answers_are_read_in_either_spelling() -> None:
    assert parse_signed_upload({"signedUrl": "https://s/u?sig", "fileUrl": "https://s/u"}).video_url == "https://s/u"
    documented = parse_signed_upload({"signed_url": "https://s/u?sig"})
    assert documented.upload_url == documented.video_url == "https://s/u?sig"  # the SDK submits the signed URL itself
    assert parse_job_id({"jobId": "a"}) == parse_job_id({"job_id": "a"}) == "a"
    with pytest.raises(ContractError, match="no job_id/jobId"):
        parse_job_id({"message": "ok"})

    assert parse_status({"status": 1}).state == parse_status({"status": "running"}).state == "running"
    assert parse_status({}).state == "running"
    done = parse_status({"status": 0, "output_signed_url": "https://o"})
    assert (done.state, done.output_url) == ("done", "https://o")
    assert parse_status({"status": "complete", "outputSignedUrl": "https://o"}).output_url == "https://o"
    failed = parse_status({"status": 3, "error": "video too long"})
    assert (failed.state, failed.message) == ("failed", "video too long")
    assert parse_status({"status": "failed"}).message == "status 'failed'"


def test_results_are_parallel_lists_in_either_spelling_with_null_frames() -> None:
    element = {"time": 0.07, "image": {"width": 480, "height": 360},
               "predictions": [{"x": 360.0, "y": 114.0, "width": 36.0, "height": 104.0, "confidence": 0.624, "class": "zebra", "class_id": 1}]}
    for offsets, times in (("frame_offset", "time_offset"), ("frame_offsets", "time_offsets")):
        body = {offsets: [6, 0, 12], times: [0.25, 0.0, 0.5], "zebras": [element, element, None], "clip": [None, None, None]}
        frames, failed = parse_results(body, "zebras")
        assert [f.frame_idx for f in frames] == [0, 6] and [f.time_offset_s for f in frames] == [0.0, 0.25]
        assert failed == 1
        [box] = frames[0].detections
        assert (box.class_name, box.class_id, box.x, box.y, box.width, box.height) == ("zebra", 1, 360.0, 114.0, 36.0, 104.0)
        assert box.confidence == pytest.approx(0.624) and box.tracker_id is None
    # an unknown model key: the first list that is not an offset list
    frames, _ = parse_results({"frame_offset": [0], "time_offset": [0.0], "fine_tuned_model_id": [element]}, "other")
    assert len(frames[0].detections) == 1
    with pytest.raises(ContractError, match="equal-length"):
        parse_results({"frame_offset": [0, 1], "time_offset": [0.0], "m": [None]}, "m")


def test_sampling_matches_the_documented_offsets() -> None:
    assert sampled_frames(48, 24.0, 4) == 8  # 0, 6, 12, ... 42
    assert sampled_frames(150, 15.0, 5) == 50
    assert sampled_frames(100, 30.0, 7) == 24  # not a divisor: offsets round(i * 30 / 7)


def test_both_forms_send_their_own_shapes() -> None:
    workflow = Target.for_workflow("acme", "people")
    assert workflow.signed_url_request("K", "a.mp4") == {"path": "/video_upload_signed_url/", "params": {"api_key": "K", "file_name": "a.mp4"}}
    assert workflow.submit_request("K", "https://f", 5)["json"] == {"api_key": "K", "workspace": "acme", "workflow": "people", "video_url": "https://f", "fps": 5}
    assert workflow.status_request("K", "j")["params"] == {"api_key": "K", "jobId": "j"}
    model = Target.for_model("people-abc12/3")
    assert model.signed_url_request("K", "a.mp4")["json"] == {"file_name": "a.mp4"}
    assert model.submit_request("K", "https://s", 2)["json"]["models"] == [
        {"model_id": "people-abc12", "model_version": "3", "inference_type": "object-detection"}
    ]
    assert model.status_request("K", "j")["params"] == {"api_key": "K", "job_id": "j"}
    with pytest.raises(ValueError, match="project/version"):
        Target.for_model("people")


def test_the_fake_serves_both_path_spellings(fake_api) -> None:
    for path in ("/video_upload_signed_url", "/video_upload_signed_url/"):
        answer = requests.post(fake_api.url + path, params={"api_key": API_KEY}, json={"file_name": "a.mp4"}, timeout=5)
        assert answer.status_code == 200 and "signed_url" in answer.json()
    for path in ("/videoinfer", "/videoinfer/"):
        answer = requests.get(fake_api.url + path, params={"api_key": API_KEY, "job_id": "nope"}, timeout=5)
        assert answer.status_code == 404 and "NOT FOUND" in answer.text


@pytest.mark.parametrize("header", ["3", "http-date"])
def test_retry_after_is_honoured(header, fake_api) -> None:
    value = "3" if header == "3" else format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    fake_api.inject("status", status=429, retry_after=value)
    http, waits = client()
    with pytest.raises(HostedRequestError, match="HTTP 404"):  # after the wait, the real answer: no such job
        http.json("check job", "GET", fake_api.url + "/videoinfer", idempotent=True, params={"api_key": API_KEY, "job_id": "x"})
    assert len(waits) == 1
    assert waits[0] == 3.0 if header == "3" else 25 < waits[0] <= 30


def test_backoff_doubles_and_gives_up_after_the_attempts(fake_api) -> None:
    fake_api.inject("status", times=4, status=502)
    http, waits = client(RetryPolicy(attempts=4, backoff_s=1.0, max_backoff_s=3.0))
    with pytest.raises(HostedRequestError, match=r"HTTP 502 fault injected \(after 4 attempts\)"):
        http.json("check job", "GET", fake_api.url + "/videoinfer", idempotent=True, params={"api_key": API_KEY, "job_id": "x"})
    assert len(waits) == 3
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0 and 1.5 <= waits[2] <= 3.0  # jittered, capped


def test_an_unreachable_server_is_retried_even_for_a_submission() -> None:
    http, waits = client(RetryPolicy(attempts=2, backoff_s=0.01, connect_timeout_s=1))
    with pytest.raises(HostedRequestError) as raised:
        http.json("submit the job", "POST", "http://127.0.0.1:9/videoinfer/", idempotent=False, params={"api_key": API_KEY})
    assert len(waits) == 1 and not raised.value.ambiguous  # nothing reached a server: nothing can have been created
    assert API_KEY not in str(raised.value) and "api_key=***" in str(raised.value)


def test_the_upload_is_streamed_from_disk(fake_api, tmp_path) -> None:
    big = tmp_path / "big.mp4"
    with open(big, "wb") as f:
        for _ in range(32):
            f.write(os.urandom(1 << 20))
    signed = requests.post(fake_api.url + "/video_upload_signed_url", params={"api_key": API_KEY}, json={"file_name": "big.mp4"}, timeout=5).json()
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


def test_redaction_covers_urls_json_and_the_literal_key() -> None:
    text = f'GET /videoinfer?api_key={API_KEY}&job_id=1 body {{"api_key": "{API_KEY}"}} echoed {API_KEY}'
    assert redact(text, [API_KEY]) == 'GET /videoinfer?api_key=***&job_id=1 body {"api_key": "***"} echoed ***'
    record = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, "", 0, '%s "%s %s"', ("http://h:80", "GET", f"/v?api_key={API_KEY}"), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == 'http://h:80 "GET /v?api_key=***"'


def test_hosted_settings_come_from_the_environment(tmp_path) -> None:
    env = {
        "VIDEO_ASSETS_HOME": str(tmp_path),
        "VIDEO_ASSETS_BACKEND": "hosted",
        "ROBOFLOW_API_URL": "http://127.0.0.1:1",
        "ROBOFLOW_MODEL": "people/2",
        "VIDEO_ASSETS_HOSTED_FPS": "2",
        "VIDEO_ASSETS_POLL_SECONDS": "5",
        "VIDEO_ASSETS_HOSTED_TIMEOUT": "600",
        "VIDEO_ASSETS_HOSTED_BUDGET_FRAMES": "10000",
        "ROBOFLOW_API_KEY": "set",
    }
    config = backend_config_from_env(env)
    assert {k: config[k] for k in ("kind", "api_url", "model", "hosted_fps", "poll_seconds", "hosted_timeout_seconds", "budget_frames")} == {
        "kind": "hosted", "api_url": "http://127.0.0.1:1", "model": "people/2", "hosted_fps": 2,
        "poll_seconds": 5.0, "hosted_timeout_seconds": 600.0, "budget_frames": 10000,
    }
    assert config["state_dir"] == str(tmp_path / "state")
    assert config["api_key"].env_var_name == "ROBOFLOW_API_KEY"  # an EnvVar, never the value
    defaults = backend_config_from_env({"VIDEO_ASSETS_HOME": str(tmp_path)})
    assert (defaults["kind"], defaults["api_url"], defaults["hosted_fps"], defaults["poll_seconds"]) == ("self_hosted", "https://api.roboflow.com", 5, 60.0)
    assert "api_key" not in defaults
    with pytest.raises(SettingsError, match="VIDEO_ASSETS_BACKEND='cloud' must be one of self_hosted, hosted, server"):
        backend_config_from_env({"VIDEO_ASSETS_BACKEND": "cloud"})
    with pytest.raises(SettingsError, match="VIDEO_ASSETS_POLL_SECONDS='soon' must be a positive number"):
        backend_config_from_env({"VIDEO_ASSETS_POLL_SECONDS": "soon"})
