"""The hosted video API's contract on its own: answers in either spelling, sampling, both request forms."""

from __future__ import annotations

import pytest
import requests

from video_assets.backends.hosted.contract import (
    ContractError,
    Target,
    parse_job_id,
    parse_results,
    parse_signed_upload,
    parse_status,
    sampled_frames,
)


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


def test_the_fake_serves_both_path_spellings(fake_api, api_key) -> None:
    for path in ("/video_upload_signed_url", "/video_upload_signed_url/"):
        answer = requests.post(fake_api.url + path, params={"api_key": api_key}, json={"file_name": "a.mp4"}, timeout=5)
        assert answer.status_code == 200 and "signed_url" in answer.json()
    for path in ("/videoinfer", "/videoinfer/"):
        answer = requests.get(fake_api.url + path, params={"api_key": api_key, "job_id": "nope"}, timeout=5)
        assert answer.status_code == 404 and "NOT FOUND" in answer.text
