"""Every fault of the hosted API ends in a retry or a clear error, never in a second job, never in a leaked key."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

from typing import Callable

import dagster as dg
import pytest

from video_assets.backends.hosted.ledger import JobKey
from video_assets.ingest.library import VideoLibrary
from video_assets.settings import REPO_DIR

# An end-to-end suite: some 25 real runs against the fake API, a minute or two in all.
pytestmark = pytest.mark.slow

FORCE = {"resources": {"backend": {"config": {"force_resubmit": True}}}}


@pytest.fixture(autouse=True)
def the_key_never_leaks(settings, caplog, api_key):
    """After each test: no file under VIDEO_ASSETS_HOME (event log, compute logs, Parquet, ledger) and no log line holds the key."""
    caplog.set_level(logging.DEBUG)  # urllib3 logs request lines, query strings included, at DEBUG
    yield
    leaks = [p for p in settings.home.rglob("*") if p.is_file() and api_key.encode() in p.read_bytes()]
    assert leaks == []
    assert api_key not in caplog.text


@pytest.fixture
def log_lines(instance) -> Callable[[dg.ExecuteInProcessResult], list[str]]:
    return lambda result: [entry.user_message for entry in instance.all_logs(result.run_id)]


@pytest.fixture
def messages(failure_message, log_lines, api_key) -> Callable[[dg.ExecuteInProcessResult], str]:
    """The failure descriptions of a run; checks on the way that no event or log line holds the key."""

    def text(result: dg.ExecuteInProcessResult) -> str:
        found = failure_message(result)
        assert api_key not in found
        assert all(api_key not in line for line in log_lines(result))
        return found

    return text


@pytest.mark.parametrize(
    "endpoint, fault",
    [
        ("signed_url", {"status": 500}),
        ("signed_url", {"drop": True}),
        ("upload", {"status": 503}),
        ("upload", {"drop": True}),
        ("status", {"status": 429, "retry_after": "0"}),
        ("status", {"status": 502}),
        ("status", {"malformed": True}),
        ("status", {"delay_s": 1.5}),  # longer than the 1 s read timeout
        ("results", {"status": 500}),
        ("results", {"drop": True}),
        ("submit", {"status": 429, "retry_after": "0"}),
        ("submit", {"status": 503}),
    ],
)
def test_transient_faults_are_retried_into_one_job(
    endpoint, fault, messages, log_lines, fake_api, walkers_key, hosted, run_hosted, prediction_rows
) -> None:
    fake_api.inject(endpoint, times=2, **fault)
    result = run_hosted(hosted(request_timeout_seconds=1.0), walkers_key)
    assert result.success, messages(result)
    assert fake_api.count(endpoint) >= 3  # two faults, then the answer
    assert len(fake_api.jobs) == 1 and len(prediction_rows("frames")) == 50
    assert any("retry 2/4" in line for line in log_lines(result))


def test_retries_give_up_with_the_cause(messages, fake_api, walkers_key, hosted, run_hosted) -> None:
    fake_api.inject("status", times=5, status=500, body="backend exploded")
    result = run_hosted(hosted(), walkers_key)
    assert not result.success
    text = messages(result)
    assert "HTTP 500 backend exploded (after 5 attempts)" in text and "re-run to check it again" in text
    assert len(fake_api.jobs) == 1
    assert run_hosted(hosted(), walkers_key).success  # resumes the same job
    assert len(fake_api.jobs) == 1 and fake_api.count("submit") == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500, "after_handling": True},
        {"status": 504, "after_handling": True},
        {"drop": True, "after_handling": True},
        {"malformed": True, "after_handling": True},
    ],
)
def test_a_submission_with_an_unknown_outcome_is_never_repeated(
    fault, messages, fake_api, walkers_key, hosted, run_hosted
) -> None:
    fake_api.inject("submit", **fault)
    backend = hosted()
    first = run_hosted(backend, walkers_key)
    assert not first.success
    text = messages(first)
    assert "may exist" in text and "not submitted again automatically" in text and "force_resubmit: true" in text
    assert len(fake_api.jobs) == 1  # the server did create it

    again = run_hosted(backend, walkers_key)
    assert not again.success and "may exist" in messages(again)
    assert fake_api.count("submit") == 1 and len(fake_api.jobs) == 1

    forced = run_hosted(backend, walkers_key, run_config=FORCE)
    assert forced.success, messages(forced)
    assert len(fake_api.jobs) == 2


def test_a_refused_submission_creates_nothing_and_can_be_retried(
    messages, fake_api, walkers_key, hosted, run_hosted
) -> None:
    fake_api.inject("submit", status=400, body="infer_fps must not exceed the video fps")
    first = run_hosted(hosted(), walkers_key)
    assert not first.success
    assert "refused the job" in messages(first) and "infer_fps must not exceed" in messages(first)
    assert fake_api.jobs == {}
    assert run_hosted(hosted(), walkers_key).success
    assert len(fake_api.jobs) == 1


def test_a_failed_job_surfaces_its_message_and_is_not_resubmitted(
    messages, fake_api, walkers_key, hosted, run_hosted
) -> None:
    fake_api.hold_jobs = True
    backend = hosted(hosted_timeout_seconds=0.3)
    assert not run_hosted(backend, walkers_key).success  # still running: gave up waiting
    [job_id] = fake_api.jobs
    fake_api.fail_job(job_id, "Model people-detect/3 was trained before 2023-06-30 and is not supported")
    failed = run_hosted(backend, walkers_key)
    assert not failed.success
    text = messages(failed)
    assert f"Hosted job {job_id}" in text and "trained before 2023-06-30" in text
    again = run_hosted(backend, walkers_key)
    assert "not resubmitted automatically" in messages(again)
    assert fake_api.count("submit") == 1


def test_waiting_stops_at_the_timeout_and_a_rerun_resumes_the_same_job(
    messages, fake_api, walkers_key, hosted, run_hosted
) -> None:
    fake_api.hold_jobs = True
    backend = hosted(hosted_timeout_seconds=0.3)
    timed_out = run_hosted(backend, walkers_key)
    assert not timed_out.success
    assert "still running after 0.3 s" in messages(timed_out) and "re-run to resume polling the same job" in messages(timed_out)
    fake_api.release_jobs()
    assert run_hosted(backend, walkers_key).success
    assert fake_api.count("submit") == 1


def test_an_expired_results_url_is_renewed(
    messages, fake_api, walkers_key, hosted, run_hosted, prediction_rows
) -> None:
    fake_api.expired_results_downloads = 1
    result = run_hosted(hosted(), walkers_key)
    assert result.success, messages(result)
    assert fake_api.count("results") == 2 and len(prediction_rows("frames")) == 50


def test_results_that_are_gone_fail_clearly_without_a_new_job(
    settings, messages, fake_api, walkers_key, hosted, run_hosted
) -> None:
    fake_api.results_gone = True
    result = run_hosted(hosted(), walkers_key)
    assert not result.success
    text = messages(result)
    assert "could not be downloaded: download the results: HTTP 404 NoSuchKey" in text and "force_resubmit" in text
    assert fake_api.count("submit") == 1 and not list(settings.predictions_dir.rglob("*.parquet"))
    assert not list(settings.predictions_dir.rglob("*.tmp"))  # nothing half-written is left either


def test_a_rejected_upload_submits_nothing(messages, fake_api, walkers_key, hosted, run_hosted) -> None:
    fake_api.inject("upload", status=403, body="SignatureDoesNotMatch")
    result = run_hosted(hosted(), walkers_key)
    assert not result.success
    text = messages(result)
    assert "two_walkers.mp4 failed" in text and "HTTP 403 SignatureDoesNotMatch" in text and "nothing is billed" in text
    assert fake_api.count("submit") == 0
    assert run_hosted(hosted(), walkers_key).success


def test_a_wrong_key_is_reported_without_showing_it(
    messages, walkers_key, hosted, run_hosted, api_key, monkeypatch
) -> None:
    monkeypatch.setenv("ROBOFLOW_API_KEY", api_key + "-wrong")
    result = run_hosted(hosted(), walkers_key)
    assert not result.success
    text = messages(result)
    assert "HTTP 401 Unauthorized" in text and "ROBOFLOW_API_KEY" in text and "-wrong" not in text


def test_a_crash_between_reserving_and_recording_a_job_blocks_resubmission(
    settings, messages, fake_api, walkers_key, hosted, run_hosted, ledger
) -> None:
    backend = hosted()
    # What a kill -9 during the POST leaves behind: a reserved submission and no job id.
    library = VideoLibrary.from_settings(settings)
    probe = library.probe(walkers_key)
    key = JobKey(fake_api.url, probe.sha256, "model:people-detect/3", 5)
    ledger.record_upload(key, walkers_key, "http://x/video", "http://x/video?sig=1")
    ledger.reserve_submission(key, 50, "run 1234abcd", None)
    result = run_hosted(backend, walkers_key)
    assert not result.success
    assert "by run 1234abcd" in messages(result) and "force_resubmit" in messages(result)
    assert fake_api.count("submit") == 0


def test_kill_9_while_polling_then_rerun_resumes_the_same_job(
    settings, fake_api, prediction_rows, ledger, drop_sample, video_keys, api_key
) -> None:
    drop_sample("two_walkers.mp4")
    key = video_keys()["two_walkers.mp4"]
    fake_api.hold_jobs = True
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_DIR),
        "VIDEO_ASSETS_HOME": str(settings.home),
        "DAGSTER_HOME": str(settings.dagster_home),
        "VIDEO_ASSETS_BACKEND": "hosted",
        "ROBOFLOW_API_URL": fake_api.url,
        "ROBOFLOW_MODEL": "people-detect/3",
        "VIDEO_ASSETS_POLL_SECONDS": "0.05",
    }
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    script = (
        "import sys, dagster as dg\n"
        "from video_assets.definitions import defs as code_location\n"
        "defs = code_location()\n"
        "with dg.DagsterInstance.get() as instance:\n"
        f"    instance.add_dynamic_partitions('videos', [{key!r}])\n"
        "    steps = ['raw_video', 'uploaded_video', 'inference_job', 'frame_predictions']\n"
        f"    result = dg.materialize([defs.get_assets_def(n) for n in steps], partition_key={key!r}, instance=instance,\n"
        "                            resources=defs.resources, raise_on_error=False)\n"
        "print('RESULT', result.success)\n"
    )
    first = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while fake_api.count("status") < 3:
            assert first.poll() is None, first.stdout.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the run never started polling"
            time.sleep(0.1)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    [job_id] = fake_api.jobs
    row = ledger.get(JobKey(fake_api.url, dropped_sha256(settings, key), "model:people-detect/3", 5))
    assert (row.state, row.job_id) == ("submitted", job_id)

    fake_api.release_jobs()
    polls_before = fake_api.count("status")
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert "RESULT True" in second.stdout, second.stdout[-3000:] + second.stderr[-3000:]
    assert fake_api.count("submit") == 1 and fake_api.count("upload") == 1
    resumed = [r for r in fake_api.requests[polls_before:] if r.endpoint == "status"]
    assert resumed and all(r.query["job_id"] == [job_id] for r in resumed)
    assert len(prediction_rows("frames")) == 50
    assert api_key not in second.stdout + second.stderr


def dropped_sha256(settings, key: str) -> str:
    return VideoLibrary.from_settings(settings).probe(key).sha256
