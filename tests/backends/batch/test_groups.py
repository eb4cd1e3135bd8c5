"""Several videos in one batch, in one process: the runs' steps as threads over one ledger (the process
tests do the same with separate run processes)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from video_assets.backends.base import BackendError, FramePrediction
from video_assets.backends.resource import Backend
from video_assets.ingest.library import VideoLibrary
from video_assets.predictions.defs import backend_config

NAMES = ("two_walkers.mp4", "one_runner.mp4")


@pytest.fixture
def predict_together(batch_settings, dropped, api_key):
    """Each video's frames (or its error), predicted by one thread per video, all joining within the window."""

    def run(window_s: float = 2.0, **overrides: Any) -> dict[str, list[FramePrediction] | BackendError]:
        settings = batch_settings(batch_window_seconds=window_s, **overrides)
        keys = dropped(*NAMES)
        library = VideoLibrary.from_settings(settings)
        outcomes: dict[str, list[FramePrediction] | BackendError] = {}

        def predict(name: str) -> None:
            frames: list[FramePrediction] = []
            backend = Backend(**backend_config(settings), api_key=api_key).implementation()
            backend.owner = f"run of {name}"  # each run holds leases in its own name (its run id)
            sink = type("ListSink", (), {"add_frame": lambda self, frame: frames.append(frame)})()
            try:
                backend.predict(library.probe(keys[name]), sink, logging.getLogger(name))
                outcomes[name] = frames
            except BackendError as exc:
                outcomes[name] = exc

        threads = [threading.Thread(target=predict, args=(name,)) for name in NAMES]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        return outcomes

    return run


def test_videos_within_the_window_share_one_batch_and_one_job(batch_api, predict_together, batch_ledger) -> None:
    outcomes = predict_together()
    assert [f.frame_idx for f in outcomes["two_walkers.mp4"]] == list(range(0, 150, 3))
    assert [f.frame_idx for f in outcomes["one_runner.mp4"]] == list(range(0, 120, 4))
    [job] = batch_api.jobs.values()
    assert len(job.videos) == 2 and len(batch_api.batches) == 3  # the staging batch, and the job's two outputs
    assert batch_api.count("upload") == 2 and batch_api.count("create_job") == 1  # one run drove the batch
    assert batch_api.count("download") == 1  # the second run reads the first one's copy
    group_id = job.definition["jobInput"]["batchId"]
    assert batch_ledger.group(group_id).frames_estimate == 50 + 30 and batch_ledger.submitted_frames() == 80


def test_a_file_roboflow_refuses_leaves_the_batch_and_the_others_go_on(batch_api, predict_together) -> None:
    batch_api.inject("upload_url", status=400, body="invalid video file name")  # whichever member is uploaded first
    outcomes = predict_together()
    [refused] = [name for name, outcome in outcomes.items() if isinstance(outcome, BackendError)]
    [processed] = [name for name in NAMES if name != refused]
    assert "Roboflow refused the file: request an upload URL: HTTP 400" in str(outcomes[refused])
    assert "Nothing was billed for it" in str(outcomes[refused]) and not outcomes[refused].permanent
    assert outcomes[processed]
    [job] = batch_api.jobs.values()
    assert [v.name.split("-", 1)[1] for v in job.videos] == [processed]


def test_an_upload_the_batch_does_not_list_is_uploaded_again_before_the_job_starts(batch_api, predict_together) -> None:
    batch_api.lost_uploads = 1
    outcomes = predict_together()
    assert all(isinstance(frames, list) and frames for frames in outcomes.values())
    [job] = batch_api.jobs.values()
    assert len(job.videos) == 2 and batch_api.count("upload") == 3


def test_one_results_file_for_the_whole_job_is_split_by_the_video_each_row_names(batch_api, predict_together) -> None:
    batch_api.shared_results = True
    outcomes = predict_together()
    assert [f.frame_idx for f in outcomes["two_walkers.mp4"]] == list(range(0, 150, 3))
    assert [f.frame_idx for f in outcomes["one_runner.mp4"]] == list(range(0, 120, 4))
    for name, frames in outcomes.items():
        assert {f.outputs["input_file"].split("-", 1)[1] for f in frames} == {name}  # each row went to its video
