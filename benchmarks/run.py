"""The benchmark harness: every figure is a ratio against a baseline measured in the same run.

    .venv/bin/python benchmarks/run.py            # full run (about 40 minutes on 2 cores; 100 M detections for f; n about 8)
    .venv/bin/python benchmarks/run.py --smoke    # tiny inputs, checks the harness works (minutes; n alone about 2.5)
    .venv/bin/python benchmarks/run.py --only e,f # some measurements only

Inputs are generated under benchmarks/work/ (reused while they exist). Results are written to
benchmarks/results/latest.json and latest.md after each measurement, so a failure later on loses nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]

import preview_bench  # noqa: E402
import workers_bench  # noqa: E402
from videos import synthetic_video  # noqa: E402


@dataclass(frozen=True)
class Scale:
    """Input sizes; --smoke shrinks everything so the harness itself can be tested."""

    seconds_720p: float = 60
    backfill_videos: int = 4
    backfill_seconds: float = 120
    rss_short_s: float = 60
    rss_long_s: float = 600
    sensor_counts: tuple[int, ...] = (100, 1_000, 10_000)
    sql_rows: tuple[int, ...] = (1_000_000, 10_000_000, 100_000_000)
    repeats: int = 2
    short_clips: int = 20
    h_rounds: int = 3
    b_rounds: int = 3
    one_frame_runs: int = 50
    detector_frames: int = 300
    preview_seconds: float = 600
    cluster_clips: int = 16
    cluster_idle_drops: int = 5
    cluster_machines: tuple[int, ...] = (1, 2)  # n: the cluster cases, by worker machines
    cluster_direct: bool = True  # n: also 2 machines straight to Postgres, without PgBouncer


SMOKE = Scale(seconds_720p=2, backfill_videos=2, backfill_seconds=2, rss_short_s=2, rss_long_s=6,
              sensor_counts=(20, 200), sql_rows=(20_000,), repeats=1, short_clips=3, h_rounds=1, b_rounds=1, one_frame_runs=3,
              detector_frames=15, preview_seconds=4,
              cluster_clips=3, cluster_idle_drops=1, cluster_machines=(2,), cluster_direct=False)


def python() -> str:
    return sys.executable


def probe(*args: str) -> dict:
    """Run pipeline_probe.py in a fresh interpreter and return its RESULT line."""
    out = subprocess.run([python(), str(BENCH / "pipeline_probe.py"), *args], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"pipeline_probe {args[0]} failed:\n{out.stderr[-4000:]}")


def measure_a_c(work: Path, scale: Scale) -> dict:
    video = synthetic_video(work / f"v720_{scale.seconds_720p:g}s.mp4", 1280, 720, 30, scale.seconds_720p)
    compare = probe("compare", str(video), str(work / "home_a"), str(scale.repeats))
    decode = probe("decode", str(video))
    ablation = probe("ablation", str(video))
    return {
        "video": f"1280x720 30 fps H.264 3 Mbit/s, {compare['frames']} frames",
        "a_ours_fps": compare["ours_fps"],
        "a_bare_fps": compare["bare_fps"],
        "a_ratio": compare["ours_fps"] / compare["bare_fps"],
        "c_decode_pyav_1thread_fps": decode["pyav_1thread_fps"],
        "c_decode_opencv_fps": decode["opencv_fps"],
        "c_ratio": compare["bare_fps"] / decode["pyav_1thread_fps"],
        "c_ablation_fps": ablation,
    }


def measure_b(work: Path, scale: Scale) -> dict:
    """Several videos through `video-assets process` (real runs, 2 at a time) vs the ceiling: the same videos
    through bare pipelines, as many side by side as ours runs at a time (over all the videos: those with
    more objects decode slower), which no scheduler could beat here.

    `Scale.b_rounds` alternating rounds (ceiling, then ours), the median round is the figure: one round
    moved by +-0.05 with the machine's state. A single bare pipeline is measured once, for scale.
    """
    videos = [
        synthetic_video(work / f"b720_{i}_{scale.backfill_seconds:g}s.mp4", 1280, 720, 30, scale.backfill_seconds,
                        objects=2 + i)
        for i in range(scale.backfill_videos)
    ]
    bare = probe("bare", str(videos[0]))
    at_a_time = os.cpu_count() or 2
    frames = bare["frames"] * len(videos)  # the videos have the same length
    rounds = []
    for _ in range(scale.b_rounds):
        ceiling = _side_by_side_bare(videos, at_a_time)
        ours = _process_backfill(work / "home_b", videos, at_a_time)
        rounds.append({"ceiling": ceiling, "ours": ours, "ratio": frames / ours["seconds"] / ceiling["fps"]})
    median = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    return {
        "videos": f"{len(videos)} x 1280x720 30 fps, {bare['frames']} frames each, {at_a_time} runs at a time",
        "b_machine_fps": frames / median["ours"]["seconds"],
        "b_bare_side_by_side_fps": median["ceiling"]["fps"],
        "b_ratio": median["ratio"],
        "b_bare_single_fps": bare["fps"],
        "b_bare_side_by_side_s": median["ceiling"]["seconds"],
        "b_run_seconds": median["ours"]["runs"],
        "b_rounds": [
            {"ratio": round(r["ratio"], 2), "ours_s": round(r["ours"]["seconds"], 1),
             "ceiling_s": round(sum(r["ceiling"]["seconds"]), 1)}
            for r in rounds
        ],
    }


def _process_backfill(home: Path, videos: list[Path], at_a_time: int) -> dict:
    """`video-assets process` over `videos`: seconds from the first run's start to the last one's end, and
    each run's wall time."""
    shutil.rmtree(home, ignore_errors=True)
    (home / "inbox").mkdir(parents=True)
    for video in videos:
        os.link(video, home / "inbox" / video.name)
    env = {**os.environ, "VIDEO_ASSETS_HOME": str(home), "VIDEO_ASSETS_SENSOR_INTERVAL": "1",
           "VIDEO_ASSETS_MAX_CONCURRENT_RUNS": str(at_a_time)}
    done = subprocess.run([str(Path(python()).with_name("video-assets")), "process"], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"video-assets process failed:\n{done.stdout[-3000:]}")
    import dagster as dg

    with dg.DagsterInstance.local_temp(str(home / "dagster")) as instance:
        records = instance.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": "drop_folder_sensor"}))
        seconds = max(r.end_time for r in records) - min(r.start_time for r in records)
        return {"seconds": seconds, "runs": [round(r.end_time - r.start_time, 1) for r in records]}


def _side_by_side_bare(videos: list[Path], at_a_time: int) -> dict:
    """Bare pipelines over all `videos`, `at_a_time` started together (one process each, import time
    excluded) and the next ones when all of those are done: frames per second of the whole."""
    frames, seconds = 0, []
    with ThreadPoolExecutor(at_a_time) as pool:
        for start in range(0, len(videos), at_a_time):
            results = list(pool.map(lambda v: probe("bare", str(v)), videos[start : start + at_a_time]))
            frames += sum(r["frames"] for r in results)
            seconds.append(round(max(r["seconds"] for r in results), 1))
    return {"fps": frames / sum(seconds), "seconds": seconds}


def measure_d(work: Path, scale: Scale) -> dict:
    short = synthetic_video(work / f"d360_{scale.rss_short_s:g}s.mp4", 640, 360, 15, scale.rss_short_s)
    long = synthetic_video(work / f"d360_{scale.rss_long_s:g}s.mp4", 640, 360, 15, scale.rss_long_s)
    one = probe("rss", str(short), str(work / "home_d"))
    ten = probe("rss", str(long), str(work / "home_d"))
    return {
        "d_short": f"{one['frames']} frames: peak RSS {one['peak_rss_mb']:.0f} MB",
        "d_long": f"{ten['frames']} frames: peak RSS {ten['peak_rss_mb']:.0f} MB",
        "d_ratio": ten["peak_rss_mb"] / one["peak_rss_mb"],
    }


def measure_e(work: Path, scale: Scale) -> dict:
    from sensor_bench import sensor_ticks

    return sensor_ticks(work, scale.sensor_counts)


def measure_f(work: Path, scale: Scale) -> dict:
    from sql_bench import sql_scaling

    return sql_scaling(work, scale.sql_rows)


def measure_g(work: Path, scale: Scale) -> dict:
    code = (
        "import json, sys, time\n"
        "t = time.perf_counter()\n"
        "import video_assets.definitions as d\n"
        "d.defs().resolve_asset_graph()\n"
        "print(json.dumps({'load_s': time.perf_counter() - t, "
        "'heavy': sorted(m for m in ('inference', 'torch', 'cv2') if m in sys.modules)}))\n"
    )
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        out = subprocess.run([python(), "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
        runs.append({**json.loads(out.stdout.strip().splitlines()[-1]), "process_s": time.perf_counter() - started})
    return {
        "g_load_s": statistics.median(r["load_s"] for r in runs),
        "g_process_s": statistics.median(r["process_s"] for r in runs),
        "g_heavy_modules_imported": sorted({m for r in runs for m in r["heavy"]}),
    }


def measure_n(work: Path, scale: Scale) -> dict:
    from cluster_bench import measure_n as measure_cluster

    return measure_cluster(work, scale.cluster_clips, scale.cluster_idle_drops, scale.cluster_machines,
                           scale.cluster_direct)


def measure_l(work: Path, scale: Scale) -> dict:
    from detector_bench import measure_detector

    return measure_detector(work, scale.detector_frames, scale.repeats)


@dataclass(frozen=True)
class Measurement:
    """One measurement; some produce several rows of the table (a measures c's baseline too)."""

    key: str  # its entry in latest.json
    rows: tuple[str, ...]  # the row letters it produces
    measure: Callable[[Path, Scale], dict]


MEASUREMENTS = [
    Measurement("a", ("a", "c"), measure_a_c),
    Measurement("b", ("b",), measure_b),
    Measurement("d", ("d",), measure_d),
    Measurement("e", ("e",), measure_e),
    Measurement("f", ("f",), measure_f),
    Measurement("g", ("g",), measure_g),
    Measurement("h", ("h",), lambda work, scale: workers_bench.measure_h(work, scale.short_clips, scale.h_rounds)),
    Measurement("i", ("i", "k"), lambda work, scale: workers_bench.measure_i_k(work, scale.one_frame_runs)),
    Measurement("j", ("j",), lambda work, scale: workers_bench.measure_j(work)),
    Measurement("l", ("l",), measure_l),
    Measurement("m", ("m",), lambda work, scale: preview_bench.measure_m(work, scale.preview_seconds)),
    Measurement("n", ("n",), measure_n),
]
ROWS = {row: m for m in MEASUREMENTS for row in m.rows}


def selected(only: str | None) -> list[Measurement]:
    """The measurements behind the row letters asked for; an unknown letter is refused before anything runs."""
    if not only:
        return list(MEASUREMENTS)
    letters = [letter.strip() for letter in only.split(",") if letter.strip()]
    unknown = [letter for letter in letters if letter not in ROWS]
    if unknown:
        raise SystemExit(f"run.py: unknown row(s) {', '.join(unknown)}; the rows are {', '.join(sorted(ROWS))}")
    return [m for m in MEASUREMENTS if any(ROWS[letter] is m for letter in letters)]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} x {cpu}, {mem_gb:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def quiet_dagster_logs() -> None:
    """In-process materializations and sensor ticks log every step; keep the harness output readable."""
    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", help=f"row letters, comma-separated: {', '.join(sorted(ROWS))}")
    parser.add_argument("--out", default=str(BENCH / "results"))
    args = parser.parse_args()
    chosen = selected(args.only)
    quiet_dagster_logs()
    scale = SMOKE if args.smoke else Scale()
    work = BENCH / "work" / ("smoke" if args.smoke else "full")
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "smoke" if args.smoke else "latest"
    previous = out / f"{stem}.json"
    # --only re-measures some rows and keeps the others of the last run (each row says when it was taken).
    results: dict = json.loads(previous.read_text()) if previous.exists() and args.only else {}
    results.update({"machine": machine(), "smoke": args.smoke})
    failed = []
    for measurement in chosen:
        rows = ",".join(measurement.rows)
        started = time.perf_counter()
        print(f"[{rows}] measuring ...", flush=True)
        try:
            figures = measurement.measure(work, scale)
        except Exception as exc:  # keep what was measured; say which row failed
            failed.append(f"[{rows}] failed after {time.perf_counter() - started:.0f} s: {type(exc).__name__}: {exc}")
            print(failed[-1], flush=True)
            continue
        results[measurement.key] = {**figures, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        save(out, stem, results)
        print(f"[{rows}] done in {time.perf_counter() - started:.0f} s", flush=True)
    from report import markdown

    save(out, stem, results)
    print(markdown(results))
    for line in failed:
        print(line, file=sys.stderr)
    return 1 if failed else 0


def save(out: Path, stem: str, results: dict) -> None:
    from report import markdown

    (out / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / f"{stem}.md").write_text(markdown(results))


if __name__ == "__main__":
    sys.exit(main())
