"""A camera hour's preview, from what its worker kept: thumbnails every 30 s and a crop of each object.

Frames of a sample video go through the real SegmentRecorder (as the camera worker hands them over,
picture included) with their true boxes, then publish_camera_hour publishes the hour and previews it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import dagster as dg
import pyarrow.parquet as pq
import pytest

from video_assets.backends.base import BackendIdentity, Detection
from video_assets.backends.self_hosted import SelfHostedBackend
from video_assets.definitions import build_definitions
from video_assets.glossary import undeclared
from video_assets.previews.assets import METADATA as PREVIEW_METADATA
from video_assets.storage import table_file
from video_assets.streams.assets import METADATA as WINDOW_METADATA
from video_assets.streams.segments import THUMBNAIL_EVERY_S, SegmentRecorder
from video_assets.streams.store import CameraStore

START = datetime(2026, 11, 26, 18, 10, tzinfo=UTC)
FRAME_S = 1.0  # one processed frame a second: 150 frames span two and a half minutes


def test_a_camera_hour_gets_a_contact_sheet_tracks_and_snapshots_from_its_worker(settings, instance, samples_dir, sample) -> None:
    settings.camera_config_path.write_text('[cameras.gate]\nurl = "rtsp://127.0.0.1:8554/gate"\n')
    cameras = CameraStore(root=str(settings.streams_dir), config_file=str(settings.camera_config_path))
    identity = BackendIdentity("self_hosted", SelfHostedBackend().workflow_version())
    clock = [0.0]
    recorder = SegmentRecorder(cameras, "gate", identity, segment_s=60.0, monotonic=lambda: clock[0])
    walkers = sample("two_walkers.mp4")
    capture = cv2.VideoCapture(str(samples_dir / "two_walkers.mp4"))
    for i in range(walkers.frames):
        ok, picture = capture.read()
        assert ok
        boxes = tuple(
            Detection("person", 0, 0.5 + (j + i % 7) / 20, x, y, w, h, tracker_id=j + 1)
            for j, (x, y, w, h) in enumerate(walkers.truth_boxes(i).values())
        )
        recorder.add_frame(START + timedelta(seconds=i * FRAME_S), boxes, {}, size=(640, 360), source_fps=15.0, image=picture)
        clock[0] = i * FRAME_S
        recorder.commit_due()
    recorder.commit_due(force=True)

    instance.add_dynamic_partitions("cameras", ["gate"])
    job = build_definitions(settings).resolve_job_def("publish_camera_hour")
    partition = dg.MultiPartitionKey({"camera": "gate", "hour": "2026-11-26-18:00"})
    result = job.execute_in_process(partition_key=partition, instance=instance, raise_on_error=False)
    assert result.success
    [event] = result.asset_materializations_for_node("camera_preview")
    meta = {k: getattr(v, "value", v) for k, v in event.metadata.items()}

    video_id = "gate@2026-11-26T18"
    tracks = pq.read_table(table_file(settings.predictions_dir, "tracks", video_id)).to_pylist()
    assert [t["tracker_id"] for t in tracks] == [1, 2] and all(t["class_name"] == "person" for t in tracks)
    # The walkers cross the default workflow's line once each, in opposite directions.
    assert sorted(c["direction"] for t in tracks for c in t["crossings"]) == ["in", "out"]
    assert meta["geometry"] == "line line_counter, zone zone"
    for track in tracks:  # the worker's crop of the track's best sighting (confidence peaks every 7 frames)
        assert track["snapshot"].endswith(f"/{track['tracker_id']}.jpg") and cv2.imread(track["snapshot"]) is not None
        assert track["max_confidence"] == pytest.approx(max(0.5 + (track["tracker_id"] - 1 + i % 7) / 20 for i in range(7)))
        assert track["first_ts"] >= START and track["last_ts"] < START + timedelta(seconds=walkers.frames)
    thumbnails = int((walkers.frames - 1) * FRAME_S // THUMBNAIL_EVERY_S) + 1
    assert meta["contact_sheet"].startswith(f"![contact sheet: frames {', '.join(str(int(k * THUMBNAIL_EVERY_S)) for k in range(thumbnails))}]")
    assert "UTC" in meta["top_tracks"] and meta["tracks"] == 2
    [window] = result.asset_materializations_for_node("camera_window")
    assert undeclared(window.metadata, WINDOW_METADATA) == [] and undeclared(event.metadata, PREVIEW_METADATA) == []
