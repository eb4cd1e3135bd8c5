"""Boxes per class and tracks tallied when frames are written (frames.class_counts, frames.tracker_ids)
give the models the rows they compute from the boxes of files written before those columns existed."""

from __future__ import annotations

import random

import pytest

from video_assets.predictions.store import PredictionStore
from video_assets.settings import Settings
from video_assets.sql.defs import sql_variables
from video_assets.sql.models import load_models

MODELS = ("detections_per_minute", "track_dwell")


def write(videos, video_id: str, tables: dict, kind: str) -> None:
    """As the writers write it now (`counted`), as an older file (`older`: no tallies), or with the tallies of
    only its first half of frames (`mixed`: a camera hour whose segments straddle an upgrade)."""
    frames = tables["frames"]
    if kind != "counted":
        keep = len(frames) // 2 if kind == "mixed" else 0
        frames = [f if i < keep else {**f, "class_counts": None, "tracker_ids": None} for i, f in enumerate(frames)]
    videos.write(video_id, {**tables, "frames": frames})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tallied_frames_give_the_rows_computed_from_the_boxes(
    tmp_path, parquet_videos, full_rebuild, same_rows, seed: int
) -> None:
    settings = Settings(home=tmp_path / "home")
    models = {m.name: m for m in load_models(settings.sql_dir, sql_variables()) if m.name in MODELS}
    rng = random.Random(seed)
    tallied = parquet_videos(settings.predictions_dir / "tallied", random.Random(seed))
    older = parquet_videos(settings.predictions_dir / "older", random.Random(seed))
    kinds = []
    for n in range(12):
        video_id = f"clip{n}.mp4-{n:012x}"
        start = tallied.START.replace(minute=rng.randrange(60))
        tables = tallied.tables(video_id, "inbox", start, rng.choice([0.2, 2.0, 15.0]), rng.randrange(1, 400), 0, counted=True)
        kinds.append(rng.choice(["counted", "older", "mixed"]))
        write(tallied, video_id, tables, kinds[-1])
        write(older, video_id, tables, "older")
    assert {"counted", "older", "mixed"} <= set(kinds)

    for name, model in models.items():
        got = full_rebuild(PredictionStore(root=str(settings.predictions_dir / "tallied")), model)
        expected = full_rebuild(PredictionStore(root=str(settings.predictions_dir / "older")), model)
        assert got and same_rows(got, expected), name
    dwell = full_rebuild(PredictionStore(root=str(settings.predictions_dir / "tallied")), models["track_dwell"])
    assert any(row[10] < row[5] - row[4] + 1 for row in dwell)  # some tracks skipped frames: frames_seen is counted
