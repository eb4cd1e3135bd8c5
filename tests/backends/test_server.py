"""The `server` backend against inference's real HTTP server (stream API), started on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from video_assets.backends.base import BackendError
from video_assets.backends.self_hosted import SelfHostedBackend
from video_assets.backends.server import ServerBackend
from video_assets.definitions import build_definitions


def boxes(rows: list[dict]) -> list[tuple]:
    return sorted((r["frame_idx"], r["x"], r["y"], r["width"], r["height"], r["class_name"], r["confidence"]) for r in rows)


@pytest.mark.slow
def test_the_server_runs_the_shipped_workflow_on_every_frame_like_self_hosted(
    settings, drop_sample, register, materialize, with_backend, failure_message, prediction_rows, sample, server_url
) -> None:
    walkers = sample("two_walkers.mp4")
    drop_sample("two_walkers.mp4")
    key = register()["two_walkers.mp4"]
    result = materialize(build_definitions(with_backend("server", server_url=server_url)), key)
    assert result.success, failure_message(result)
    [event] = result.asset_materializations_for_node("frame_predictions")
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta["backend"] == "server" and meta["frames_processed"] == walkers.frames and meta["frames_missing"] == 0
    server_frames, server_detections = prediction_rows("frames"), prediction_rows("detections")
    assert sorted(f["frame_idx"] for f in server_frames) == list(range(walkers.frames))
    assert {f["backend"] for f in server_frames} == {"server"}

    # The same workflow in-process gives the same boxes, tracks and line counts.
    assert materialize(build_definitions(settings), key).success  # the default backend: self_hosted
    local_frames, local_detections = prediction_rows("frames"), prediction_rows("detections")
    assert len(server_detections) > 200
    assert boxes(server_detections) == boxes(local_detections)
    tracks = lambda rows: len({r["tracker_id"] for r in rows})  # noqa: E731
    assert tracks(server_detections) == tracks(local_detections) == 2
    last = lambda frames: json.loads(max(frames, key=lambda f: f["frame_idx"])["outputs"])  # noqa: E731
    assert last(server_frames) == last(local_frames) == {"line_count_in": 1, "line_count_out": 1, "zone_occupancy": 1}
    assert {f["workflow_version"] for f in server_frames} == {f["workflow_version"] for f in local_frames}


@pytest.mark.slow
def test_an_empty_scene_still_yields_every_frame(samples_dir, sample, predict_frames, server_url) -> None:
    frames = predict_frames(ServerBackend(server_url, SelfHostedBackend()), samples_dir / "empty_hallway.mp4")
    assert [f.frame_idx for f in frames] == list(range(sample("empty_hallway.mp4").frames))
    assert all(not f.detections for f in frames)


def test_an_unreachable_server_is_named(predict_frames) -> None:
    backend = ServerBackend("http://127.0.0.1:9", SelfHostedBackend())
    with pytest.raises(BackendError, match=r"inference server at http://127.0.0.1:9 could not start a pipeline .*ENABLE_STREAM_API"):
        predict_frames(backend, probe_of_missing())


def probe_of_missing():
    from datetime import datetime, timezone

    from video_assets.ingest.probe import MediaInfo, VideoProbe

    media = MediaInfo(1.0, 15.0, 15, 640, 360, "h264", datetime(2024, 1, 1, tzinfo=timezone.utc))
    return VideoProbe("x-0123456789ab", "inbox", "x.mp4", "/nonexistent/x.mp4", 1, "0" * 64, media)
