"""Every fault of Batch Processing ends in a retry or a clear error, never in a second job, never in a leaked key."""

from __future__ import annotations

import pytest

from video_assets.settings import API_KEY_ENV

FORCE = {"resources": {"backend": {"config": {"force_resubmit": True}}}}
pytestmark = pytest.mark.slow  # about 30 runs of a few seconds each


@pytest.fixture
def walkers(dropped) -> str:
    return dropped("two_walkers.mp4")["two_walkers.mp4"]


def logs(result, instance) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(result.run_id)]


@pytest.mark.parametrize(
    "endpoint, fault",
    [
        ("upload_url", {"status": 500}),
        ("upload", {"status": 503}),
        ("upload", {"drop": True}),
        ("list", {"status": 502}),
        ("create_job", {"status": 429, "retry_after": "0"}),
        ("create_job", {"status": 503}),
        ("job", {"status": 429, "retry_after": "0"}),
        ("job", {"status": 502}),
        ("job", {"malformed": True}),
        ("job", {"delay_s": 1.5}),  # longer than the 1 s read timeout
        ("stages", {"status": 500}),
        ("parts", {"status": 503}),
        ("download", {"drop": True}),
        ("download", {"status": 500}),
    ],
)
def test_transient_faults_are_retried_into_one_job(
    endpoint, fault, batch_api, batch_settings, walkers, run_batch, failure_message, prediction_rows, instance
) -> None:
    batch_api.inject(endpoint, times=2, **fault)
    result = run_batch(batch_settings(request_timeout_seconds=1.0), walkers)
    assert result.success, failure_message(result)
    assert batch_api.count(endpoint) >= 3  # two faults, then the answer
    assert len(batch_api.jobs) == 1 and len(prediction_rows("frames")) == 50
    assert any("retry 2/4" in line for line in logs(result, instance))


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500, "after_handling": True},
        {"status": 504, "after_handling": True},
        {"drop": True, "after_handling": True},
    ],
)
def test_a_job_created_behind_a_lost_answer_is_found_not_created_again(
    fault, batch_api, batch_settings, walkers, run_batch, failure_message, instance
) -> None:
    batch_api.inject("create_job", **fault)
    result = run_batch(batch_settings(), walkers)
    assert result.success, failure_message(result)
    assert batch_api.count("create_job") == 1 and len(batch_api.jobs) == 1
    assert any("may or may not have worked" in line for line in logs(result, instance))
    assert any("exists; it is not started again" in line for line in logs(result, instance))


def test_a_job_never_created_behind_a_lost_answer_is_created_under_the_same_id(
    batch_api, batch_settings, walkers, run_batch, failure_message
) -> None:
    batch_api.inject("create_job", drop=True)  # the connection closes before the server acts
    result = run_batch(batch_settings(), walkers)
    assert result.success, failure_message(result)
    posts = [r for r in batch_api.requests if r.endpoint == "create_job"]
    assert len(posts) == 2 and posts[0].path == posts[1].path and posts[0].body == posts[1].body
    assert len(batch_api.jobs) == 1


@pytest.mark.parametrize(
    "status, body",
    [
        (402, "Batch processing is not enabled for this workspace. Upgrade your plan or contact sales."),
        (400, "Workflow count-people not found in workspace acme"),
    ],
)
def test_a_refused_job_creates_nothing_and_the_videos_join_a_new_batch(
    status, body, batch_api, batch_settings, walkers, run_batch, failure_message, batch_ledger
) -> None:
    batch_api.inject("create_job", status=status, body=body)
    refused = run_batch(batch_settings(), walkers)
    assert not refused.success
    text = failure_message(refused)
    assert f"HTTP {status}" in text and body in text and "No job was created and nothing is billed" in text
    assert batch_api.jobs == {} and batch_ledger.submitted_frames() == 0
    again = run_batch(batch_settings(), walkers)
    assert again.success, failure_message(again)
    [job] = batch_api.jobs.values()
    refused_batch = next(r.path for r in batch_api.requests if r.endpoint == "upload_url").split("/")[6]
    assert job.definition["jobInput"]["batchId"] != refused_batch
    assert batch_ledger.submitted_frames() == 50


def test_an_expired_upload_url_is_renewed(batch_api, batch_settings, walkers, run_batch, failure_message, instance) -> None:
    batch_api.expired_upload_urls = 1
    result = run_batch(batch_settings(), walkers)
    assert result.success, failure_message(result)
    assert batch_api.count("upload_url") == 2 and batch_api.count("upload") == 2 and len(batch_api.jobs) == 1
    assert any("asking for a fresh one" in line for line in logs(result, instance))


def test_an_expired_download_url_is_renewed(batch_api, batch_settings, walkers, run_batch, failure_message, prediction_rows) -> None:
    batch_api.expired_download_urls = 1
    result = run_batch(batch_settings(), walkers)
    assert result.success, failure_message(result)
    assert batch_api.count("download") == 2 and len(prediction_rows("frames")) == 50


def test_a_failed_job_surfaces_its_message_and_is_not_resubmitted(batch_api, batch_settings, walkers, run_batch, failure_message) -> None:
    batch_api.fail_jobs = "Workflow step model failed: model people-detect/3 not found"
    failed = run_batch(batch_settings(), walkers)
    assert not failed.success
    [job_id] = batch_api.jobs
    text = failure_message(failed)
    assert f"Batch job {job_id}" in text and "model people-detect/3 not found" in text and "stage processing" in text
    assert f"restart-job --job-id {job_id}" in text and "force_resubmit" in text
    again = run_batch(batch_settings(), walkers)
    assert not again.success and "not resubmitted automatically" in failure_message(again)
    assert batch_api.count("create_job") == 1

    forced = run_batch(batch_settings(), walkers, run_config=FORCE)  # still failing: a second, paid job that fails too
    assert not forced.success and len(batch_api.jobs) == 2


def test_a_job_restarted_in_roboflow_is_picked_up_by_a_rerun(batch_api, batch_settings, walkers, run_batch, failure_message, prediction_rows) -> None:
    batch_api.fail_jobs = "CUDA out of memory"
    assert not run_batch(batch_settings(), walkers).success
    [job_id] = batch_api.jobs
    batch_api.fail_jobs = None
    batch_api.restart(job_id)  # inference rf-cloud batch-processing restart-job --job-id …
    result = run_batch(batch_settings(), walkers)
    assert result.success, failure_message(result)
    assert batch_api.count("create_job") == 1 and len(prediction_rows("frames")) == 50


def test_a_job_stopped_at_its_processing_timeout_says_so(batch_api, batch_settings, walkers, run_batch, failure_message) -> None:
    batch_api.machine_seconds_per_video = 900
    result = run_batch(batch_settings(batch_max_runtime_seconds=600), walkers)
    assert not result.success
    assert "Job exceeded its processing timeout" in failure_message(result) and "processingTimeoutSeconds=600" in failure_message(result)
    [job] = batch_api.jobs.values()
    assert job.definition["processingTimeoutSeconds"] == 600


def test_waiting_stops_at_the_timeout_and_a_rerun_resumes_the_same_job(batch_api, batch_settings, walkers, run_batch, failure_message) -> None:
    batch_api.hold_jobs = True
    timed_out = run_batch(batch_settings(hosted_timeout_seconds=0.3), walkers)
    assert not timed_out.success
    assert "is still submitted after 0.3 s" in failure_message(timed_out) and "re-run to resume waiting for the same job" in failure_message(timed_out)
    batch_api.hold_jobs = False
    assert run_batch(batch_settings(), walkers).success
    assert batch_api.count("create_job") == 1 and batch_api.count("upload") == 1


def test_a_video_missing_from_the_output_fails_for_good_without_a_new_job(
    batch_api, batch_settings, walkers, run_batch, failure_message, batch_ledger, settings
) -> None:
    batch_api.fail_videos = ("two_walkers",)  # its task failed; the job as a whole succeeded
    result = run_batch(batch_settings(), walkers)
    assert not result.success
    [job_id] = batch_api.jobs
    text = failure_message(result)
    assert f"Batch job {job_id} finished, but its output has no results file for va" in text
    assert "the job said: Job completed" in text
    assert f"fetch-logs --job-id {job_id}" in text and "force_resubmit" in text
    again = run_batch(batch_settings(), walkers)
    assert not again.success and batch_api.count("create_job") == 1
    assert list(settings.predictions_dir.rglob("*.parquet")) == []
    [member] = [m for m in batch_ledger.members(next(iter(batch_api.batches))) if m.state == "missing"]
    assert member.message.startswith("no results file for va")


def test_a_wrong_key_is_reported_without_showing_it(
    batch_api, batch_settings, walkers, run_batch, failure_message, monkeypatch, api_key
) -> None:
    monkeypatch.setenv(API_KEY_ENV, api_key + "-wrong")
    result = run_batch(batch_settings(), walkers)
    assert not result.success
    text = failure_message(result)
    assert "HTTP 401" in text and "Unauthorized" in text and "-wrong" not in text
    assert batch_api.jobs == {}
