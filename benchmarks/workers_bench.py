"""Rows h, i, j, k: what warm run workers cost per video, measured through `video-assets process` itself.

- h: many short clips through `process` (services started, runs on the workers) ÷ the same clips through
  bare InferencePipeline in one process, import included on both sides.
- i: the fixed cost of one video on a warm worker: run wall time (start to end) of 1-frame clips.
- j: `video-assets demo` end to end on a fresh home (install excluded).
- k: memory of a worker process after its 50th run ÷ after its first (the `worker_rss_mb` each
  frame_predictions materialization records).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CLI = str(Path(sys.executable).with_name("video-assets"))


def short_clips(folder: Path, count: int, seconds: tuple[float, float], fps: int = 30) -> list[Path]:
    """`count` 640x360 clips of a textured block crossing the frame, each a different length and content."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    clips = []
    for i in range(count):
        path = folder / f"clip_{i:03d}.mp4"
        clips.append(path)
        if path.exists():
            continue
        frames = max(1, round(fps * (seconds[0] + (seconds[1] - seconds[0]) * i / max(count - 1, 1))))
        background = rng.integers(40, 200, (45, 80, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        block = rng.integers(0, 256, (80, 60, 3), dtype=np.uint8)
        with av.open(str(path), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
            for f in range(frames):
                picture = background.copy()
                x = int(40 + (520 * f) / max(frames - 1, 1))
                picture[140:220, x : x + 60] = block
                for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return clips


def process(home: Path, clips: list[Path], env: dict[str, str] | None = None) -> tuple[float, dict]:
    """`video-assets process` on a fresh home holding `clips`: its wall time and what the instance recorded."""
    shutil.rmtree(home, ignore_errors=True)
    (home / "inbox").mkdir(parents=True)
    for clip in clips:
        os.link(clip, home / "inbox" / clip.name)
    started = time.time()
    done = subprocess.run(
        [CLI, "process"], env={**os.environ, "VIDEO_ASSETS_HOME": str(home), **(env or {})}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"video-assets process failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return started, video_runs(home)


def video_runs(home: Path) -> dict:
    """Each video run's start/end, frames and worker memory, oldest first."""
    import dagster as dg

    with dg.DagsterInstance.local_temp(str(home / "dagster")) as instance:
        records = instance.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": "drop_folder_sensor"}))
        runs = []
        for record in sorted(records, key=lambda r: r.start_time or 0):
            key = record.dagster_run.tags["dagster/partition"]
            found = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("frame_predictions"), asset_partitions=[key]), limit=1
            ).records
            metadata = found[0].asset_materialization.metadata if found else {}
            runs.append(
                {
                    "start": record.start_time,
                    "end": record.end_time,
                    "frames": metadata["frames_processed"].value if "frames_processed" in metadata else 0,
                    "rss_mb": metadata["worker_rss_mb"].value if "worker_rss_mb" in metadata else None,
                }
            )
    return {"runs": runs}


def bare_many(clips: list[Path]) -> dict:
    """The same clips through bare InferencePipeline, one after another in one fresh process, import included."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(BENCH / "pipeline_probe.py"), "bare_many", *map(str, clips)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    line = next((line for line in out.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"pipeline_probe bare_many failed:\n{out.stderr[-3000:]}")
    return {**json.loads(line[7:]), "wall_s": time.perf_counter() - started}


def measure_h(work: Path, count: int, rounds: int) -> dict:
    """`rounds` alternating pairs (bare, then ours) over the same clips; the median pair is the figure.

    One pair varies by +-0.1 here, mostly through the bare pipeline's import time, which moves with the
    machine's state: alternating exposes both sides to the same drift.
    """
    clips = short_clips(work / "short_clips", count, (3.0, 4.0))
    pairs = []
    for _ in range(rounds):
        bare = bare_many(clips)
        started, recorded = process(work / "home_h", clips)
        runs = recorded["runs"]
        frames = sum(r["frames"] for r in runs)
        ours_s = max(r["end"] for r in runs) - started  # from `process` starting to the last video done
        pairs.append({"frames": frames, "ours_s": ours_s, "bare_s": bare["wall_s"], "bare_frames": bare["frames"]})
    ratios = [(p["frames"] / p["ours_s"]) / (p["bare_frames"] / p["bare_s"]) for p in pairs]
    middle = sorted(range(rounds), key=ratios.__getitem__)[rounds // 2]
    median = pairs[middle]
    return {
        "clips": f"{len(clips)} clips of 3-4 s, 640x360 30 fps, {median['frames']} frames",
        "h_ours_fps": median["frames"] / median["ours_s"],
        "h_bare_fps": median["bare_frames"] / median["bare_s"],
        "h_ratio": ratios[middle],
        "h_ours_s": round(median["ours_s"], 1),
        "h_bare_s": round(median["bare_s"], 1),
        "h_rounds": [
            {"ratio": round(r, 2), "ours_s": round(p["ours_s"], 1), "bare_s": round(p["bare_s"], 1)}
            for r, p in zip(ratios, pairs, strict=True)
        ],
    }


def measure_i_k(work: Path, count: int) -> dict:
    """`count` 1-frame clips through one warm worker process (not recycled): per-run cost and memory."""
    clips = short_clips(work / "one_frame_clips", count, (1 / 30, 1 / 30))
    env = {"VIDEO_ASSETS_WORKERS": "1", "VIDEO_ASSETS_WORKER_MAX_RUNS": str(count + 10)}
    _, recorded = process(work / "home_i", clips, env)
    runs = recorded["runs"]
    walls = [r["end"] - r["start"] for r in runs]
    rss = [r["rss_mb"] for r in runs if r["rss_mb"]]
    return {
        "i_runs": len(runs),
        "i_first_run_s": round(walls[0], 2),
        "i_median_warm_run_s": round(statistics.median(walls[1:]), 2),
        "i_worst_warm_run_s": round(max(walls[1:]), 2),
        "k_rss_first_mb": rss[0],
        "k_rss_last_mb": rss[-1],
        "k_ratio": rss[-1] / rss[0],
    }


def measure_j(work: Path) -> dict:
    home = work / "home_j"
    shutil.rmtree(home, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run([CLI, "demo"], env={**os.environ, "VIDEO_ASSETS_HOME": str(home)}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"video-assets demo failed:\n{done.stdout[-3000:]}")
    return {"j_demo_s": round(seconds, 1), "j_summary": done.stdout.strip().splitlines()[-1]}
