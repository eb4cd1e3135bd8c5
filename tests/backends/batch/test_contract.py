"""The Batch Processing contract as inference-cli 1.8.3 speaks it: ids, the job definition, states, results rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from video_assets.backends.batch.contract import (
    MAX_BATCH_ID,
    MAX_JOB_ID,
    ContractError,
    JobSettings,
    checked_id,
    frames_from_rows,
    job_definition,
    new_batch_id,
    new_job_id,
    parse_job,
    parse_signed_upload,
    parse_stages,
    results_batch,
)

ID = re.compile(r"^[a-z0-9_-]+$")


def test_ids_we_choose_fit_the_documented_alphabet_and_lengths() -> None:
    batch_ids = {new_batch_id(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) for _ in range(50)}
    job_ids = {new_job_id() for _ in range(50)}
    assert len(batch_ids) == 50 and len(job_ids) == 50  # random parts: no two groups share an id
    assert all(ID.match(i) and len(i) <= MAX_BATCH_ID and i.startswith("va-20260301-120000-") for i in batch_ids)
    assert all(ID.match(i) and len(i) <= MAX_JOB_ID for i in job_ids)
    with pytest.raises(ValueError, match="at most 20 characters"):
        checked_id("job id", "a" * 21, MAX_JOB_ID)
    with pytest.raises(ValueError, match="lowercase letters"):
        checked_id("batch id", "My-Batch", MAX_BATCH_ID)


def test_the_job_definition_is_what_inference_cli_sends_for_videos() -> None:
    settings = JobSettings("acme", "count-people", max_video_fps=5, machine_type="gpu", workers_per_machine=2, max_runtime_s=7200)
    assert job_definition("va-batch-1", settings) == {
        "type": "simple-video-processing-v1",
        "jobInput": {"type": "staging-batch-input-v1", "batchId": "va-batch-1"},
        "computeConfiguration": {"type": "compute-configuration-v2", "machineType": "gpu", "workersPerMachine": 2},
        "processingTimeoutSeconds": 7200,
        "processingSpecification": {
            "type": "workflows-processing-specification-v1", "workspace": "acme", "workflowId": "count-people",
            "persistImagesOutputs": False, "aggregationFormat": "jsonl", "maxVideoFPS": 5,
        },
    }
    unset = job_definition("b", JobSettings("acme", "w", 5, "cpu"))
    assert "workersPerMachine" not in unset["computeConfiguration"] and "processingTimeoutSeconds" not in unset
    assert JobSettings.from_json(settings.to_json()) == settings  # sent again identically after an ambiguous answer


@pytest.mark.parametrize(
    "job, state",
    [
        ({"isTerminal": False, "error": False}, "running"),
        ({"isTerminal": False, "error": True}, "running"),  # an error while running is not the end
        ({"isTerminal": True, "error": False}, "succeeded"),
        ({"isTerminal": True, "error": True}, "failed"),
        ({}, "running"),  # both default to false, as in inference-cli's JobMetadata
    ],
)
def test_job_states_are_read_as_the_cli_reads_them(job, state) -> None:
    assert parse_job({"job": {"jobId": "j", **job}}).state == state


def test_a_failed_job_carries_its_last_notification() -> None:
    status = parse_job({"job": {"isTerminal": True, "error": True, "currentStage": "processing",
                                "lastNotification": {"type": "job-failed", "message": "Workflow not found"}}})
    assert (status.state, status.stage, status.message) == ("failed", "processing", "Workflow not found")
    assert parse_job({"job": {"isTerminal": True, "error": True, "lastNotification": "OOM"}}).message == "OOM"
    with pytest.raises(ContractError):
        parse_job({"jobs": []})


def test_the_results_batch_is_the_export_stage_output() -> None:
    stages = parse_stages({"stages": [
        {"processingStageName": "processing", "statusType": "success", "outputBatches": ["j-processing"]},
        {"processingStageName": "export", "statusType": "success", "outputBatches": ["j-export"],
         "notification": {"type": "stage-completed"}},
    ]})
    finished = parse_job({"job": {"isTerminal": True, "lastNotification": {"resultsBatches": ["named"]}}})
    assert results_batch(stages, finished) == "j-export"
    assert results_batch(stages[:1], finished) == "named"  # no export stage: the batch the notification names
    assert results_batch(stages[:1], parse_job({"job": {"isTerminal": True}})) == "j-processing"
    assert parse_stages({"stages": [{"processingStageName": "p", "statusType": "error-task-failed"}]})[0].failed


def test_a_signed_upload_needs_its_url_and_keeps_its_extension_headers() -> None:
    upload = parse_signed_upload({"signedURLDetails": {"uploadURL": "https://s/x?sig=1", "extensionHeaders": {"X-Goog-Meta-A": 1}}})
    assert (upload.url, upload.headers) == ("https://s/x?sig=1", {"X-Goog-Meta-A": "1"})
    with pytest.raises(ContractError, match="uploadURL"):
        parse_signed_upload({"signedURL": "https://s/x"})


def row(x: float, **position) -> dict:
    return {"predictions": {"image": {"width": 64, "height": 64},
                            "predictions": [{"x": x, "y": 1, "width": 2, "height": 3, "confidence": 0.5, "class": "a", "class_id": 0}]},
            "count": 1, **position}


def test_rows_that_say_their_frame_are_placed_there_whatever_their_order() -> None:
    rows = [row(2.0, video_metadata={"frame_number": 7}), row(1.0, video_metadata={"frame_number": 1})]
    read = frames_from_rows(rows, video_fps=15, sampled_fps=6, frame_count=30, detections_output="predictions")
    assert [(f.frame_idx, f.time_offset_s) for f in read.frames] == [(0, 0.0), (6, 0.4)]  # frame_number is 1-based
    assert read.located and read.exact
    assert [f.detections[0].x for f in read.frames] == [1.0, 2.0]
    assert read.frames[0].outputs == {"count": 1}
    offsets = frames_from_rows([row(1.0, frame_offset=0), row(1.0, frame_offset=3)], 15, 5, 30, "predictions")
    assert [f.frame_idx for f in offsets.frames] == [0, 3]


def test_rows_without_a_frame_are_placed_by_order_exactly_only_for_a_whole_stride() -> None:
    whole = frames_from_rows([row(1.0) for _ in range(4)], video_fps=15, sampled_fps=5, frame_count=12, detections_output="predictions")
    assert [f.frame_idx for f in whole.frames] == [0, 3, 6, 9] and whole.exact and not whole.located
    assert [f.time_offset_s for f in whole.frames] == [0.0, 0.2, 0.4, 0.6]
    # 15 / 6 = 2.5: InferencePipeline kept 4 of 9 frames with strides of 2 or 3; spread evenly, never past the end
    fractional = frames_from_rows([row(1.0) for _ in range(4)], video_fps=15, sampled_fps=6, frame_count=9, detections_output="predictions")
    assert [f.frame_idx for f in fractional.frames] == [0, 2, 4, 7] and not fractional.exact
    assert frames_from_rows([], video_fps=15, sampled_fps=6, frame_count=9, detections_output="predictions").frames == []
    every = frames_from_rows([row(1.0) for _ in range(3)], video_fps=15, sampled_fps=15, frame_count=3, detections_output="other")
    assert [f.frame_idx for f in every.frames] == [0, 1, 2] and every.frames[0].detections  # the first output with boxes
