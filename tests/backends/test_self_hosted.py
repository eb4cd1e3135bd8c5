"""The real InferencePipeline running the shipped offline workflow on generated videos."""

import json
from collections import defaultdict
from pathlib import Path

import pytest

from video_assets.backends.base import BackendError
from video_assets.backends.self_hosted import DEFAULT_WORKFLOW_FILE, SelfHostedBackend, spec_hash

MOTION_WARMUP_FRAMES = 31  # motion_detection learns the background over `history` = 30 frames


def test_moving_objects_are_detected_where_they_are_with_stable_track_ids(samples_dir, sample, predict_frames) -> None:
    walkers = sample("two_walkers.mp4")
    frames = predict_frames(SelfHostedBackend(), samples_dir / walkers.name)

    assert [f.frame_idx for f in frames] == list(range(walkers.frames))
    assert frames[10].time_offset_s == pytest.approx(10 / walkers.fps)
    assert all(not f.detections for f in frames[:MOTION_WARMUP_FRAMES - 1])
    ids_by_object: dict[str, set[int]] = defaultdict(set)
    matched = 0
    for f in frames[MOTION_WARMUP_FRAMES:]:
        truth = walkers.truth_boxes(f.frame_idx)
        assert len(f.detections) == len(truth), f"frame {f.frame_idx}"
        for name, (cx, cy, w, h) in truth.items():
            det = min(f.detections, key=lambda d: abs(d.x - cx) + abs(d.y - cy))
            assert abs(det.x - cx) <= 6 and abs(det.y - cy) <= 4, (f.frame_idx, name, det)
            assert abs(det.width - w) <= 12 and abs(det.height - h) <= 6, (f.frame_idx, name, det)
            assert det.class_name == "motion" and det.confidence == 1.0
            ids_by_object[name].add(det.tracker_id)
            matched += 1
    assert matched > 200
    assert all(len(ids) == 1 for ids in ids_by_object.values()), ids_by_object
    assert len(set.union(*ids_by_object.values())) == 2
    # Each object crosses the vertical line at x=320 once, one in each direction; at the end one
    # object (right_to_left) is in the zone, the left half of the picture.
    assert frames[-1].outputs == {"line_count_in": 1, "line_count_out": 1, "zone_occupancy": 1}


def test_an_empty_scene_yields_every_frame_and_no_detections(samples_dir, sample, predict_frames) -> None:
    frames = predict_frames(SelfHostedBackend(), samples_dir / "empty_hallway.mp4")
    assert [f.frame_idx for f in frames] == list(range(sample("empty_hallway.mp4").frames))
    assert all(f.detections == () for f in frames)


def test_a_failing_workflow_step_fails_the_video_with_its_error(samples_dir, tmp_path, predict_frames) -> None:
    spec = {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [
            {
                "type": "roboflow_core/roboflow_object_detection_model@v2",
                "name": "model",
                "images": "$inputs.image",
                "model_id": "yolov8n-640",  # needs weights from the network: fails offline at the first frame
            }
        ],
        "outputs": [{"type": "JsonField", "name": "predictions", "selector": "$steps.model.predictions"}],
    }
    workflow = tmp_path / "needs_network.json"
    workflow.write_text(json.dumps(spec))
    with pytest.raises(BackendError, match=r"The workflow failed on .*one_runner.mp4") as raised:
        predict_frames(SelfHostedBackend(workflow_file=str(workflow)), samples_dir / "one_runner.mp4")
    assert "model blocks need an API key" in str(raised.value)


def test_an_unreadable_workflow_file_is_named_and_retried(tmp_path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    with pytest.raises(BackendError, match="broken.json cannot be read") as raised:
        SelfHostedBackend(workflow_file=str(broken)).identity()
    assert not raised.value.permanent  # the file may be fixed or mounted again: the step and the backfill retry


def test_workflow_version_follows_the_spec(tmp_path) -> None:
    shipped = json.loads(Path(DEFAULT_WORKFLOW_FILE).read_text())
    assert SelfHostedBackend().identity().workflow_version == f"inline:{spec_hash(shipped)}"
    shipped["steps"][0]["threshold"] = 20
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(shipped, indent=4))
    assert SelfHostedBackend(workflow_file=str(changed)).identity().workflow_version != SelfHostedBackend().identity().workflow_version
    saved = SelfHostedBackend(workspace="acme", workflow_id="people", workflow_version_id="3", api_key="k")
    assert saved.identity().workflow_version == "acme/people@3"
