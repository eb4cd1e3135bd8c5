"""How many bytes one camera adds per hour at the default settings: measured on a real stack, then extrapolated.

    .venv/bin/python benchmarks/camera_disk.py --minutes 16

A synthetic 720p, 25 fps camera (three moving textured objects, sensor-like noise; benchmarks/videos.py)
is served as live HLS on 127.0.0.1 (ffmpeg + http.server, as the camera tests do). One camera worker
records it with the shipped workflow and the default camera settings (realtime, no max_fps, 60 s
segments, 300 s refresh) while the real Dagster daemon and one run worker publish its hours
(camera_window) and rebuild the SQL models. Every minute the size of each folder under
VIDEO_ASSETS_HOME is sampled; the growth between the first sample after warm-up and the last one is
scaled to an hour. Results: benchmarks/results/camera_disk.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH), str(REPO / "tests")]

from servers.live_servers import HlsServer  # noqa: E402
from videos import synthetic_video  # noqa: E402

WORK = BENCH / "work" / "camera_disk"
PARTS = (  # what is measured, by where it lives under VIDEO_ASSETS_HOME
    "segments",  # streams/
    "predictions",  # predictions/ (Parquet)
    "warehouse",  # warehouse.duckdb and its build copy under state/
    "dagster: a file per run",  # dagster/history/runs/<run id>.db (SQLite storage keeps each run's events apart)
    "dagster: event index, runs",  # dagster/history/runs/index.db, runs.db
    "dagster: ticks, automation evaluations",  # dagster/schedules/schedules.db
    "dagster: compute logs, outputs",  # dagster/storage/
    "logs",  # logs/
    "state, other",  # hash cache, run queue and results, ...
)


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def sample(home: Path) -> dict[str, int]:
    runs = home / "dagster" / "history" / "runs"
    index = size(runs / "index.db") + size(home / "dagster" / "history" / "runs.db")
    build = size(home / "state" / "warehouse.build.duckdb")
    return dict(
        zip(
            PARTS,
            (
                size(home / "streams"),
                size(home / "predictions"),
                size(home / "warehouse.duckdb") + build,
                size(runs) - size(runs / "index.db"),
                index,
                size(home / "dagster" / "schedules"),
                size(home / "dagster" / "storage"),
                size(home / "logs"),
                size(home / "state") - build,
            ),
            strict=True,
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=16.0, help="recording time after warm-up")
    parser.add_argument("--warmup", type=float, default=3.0, help="minutes before the first counted sample")
    args = parser.parse_args()

    from video_assets.runtime.instance import prepare_environment
    from video_assets.runtime.services import local_services
    from video_assets.settings import Settings

    video = synthetic_video(BENCH / "work" / "camera_720p25.mp4", 1280, 720, 25, 60)
    home = WORK / "home"
    if home.exists():
        subprocess.run(["rm", "-rf", str(home)], check=True)
    home.mkdir(parents=True)
    server = HlsServer(video, WORK / "hls")
    server.start()
    (home / "cameras.toml").write_text(f'[cameras.bench]\nurl = "{server.url}"\n')  # every other setting: default
    os.environ.update({"VIDEO_ASSETS_HOME": str(home), "VIDEO_ASSETS_WORKERS": "1"})
    settings = replace(Settings.from_env(), workers=1)
    prepare_environment(settings)
    samples: list[tuple[float, dict[str, int], dict]] = []
    camera = None
    try:
        with local_services(settings) as services:
            command = [sys.executable, "-m", "video_assets.cli.main", "cameras", "run"]
            camera = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
            started = time.monotonic()
            end = started + (args.warmup + args.minutes) * 60
            while time.monotonic() < end:
                time.sleep(60)
                services.check()
                status = json.loads((home / "streams" / "bench" / "status.json").read_text())
                samples.append((time.monotonic() - started, sample(home), status))
                print(f"{(time.monotonic() - started) / 60:5.1f} min  {samples[-1][1]}  fps={status['fps']}", flush=True)
            camera.send_signal(signal.SIGTERM)
            camera.wait(timeout=120)
            import dagster as dg

            with dg.DagsterInstance.get() as instance:
                runs = instance.get_run_records()
    finally:
        if camera is not None and camera.poll() is None:
            os.killpg(camera.pid, signal.SIGKILL)
        server.stop()
    report(args, samples, runs)
    return 0


def report(args: argparse.Namespace, samples: list, runs: list) -> None:
    first = next(s for s in samples if s[0] >= args.warmup * 60)
    last = samples[-1]
    hours = (last[0] - first[0]) / 3600
    per_hour = {name: (last[1][name] - first[1][name]) / hours for name in PARTS}
    frames = last[2]["frames_processed"] - first[2]["frames_processed"]
    camera_runs = [r for r in runs if "bench" in r.dagster_run.tags.get("dagster/partition", "")]
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "minutes_counted": round(hours * 60, 1),
        "processed_fps": round(frames / (hours * 3600), 2),
        "frames_dropped": last[2]["frames_dropped"],
        "bytes_per_hour": {k: round(v) for k, v in per_hour.items()},
        "bytes_per_processed_frame": {k: round(v / (frames / hours), 1) for k, v in per_hour.items() if frames},
        "runs": len(runs),
        "camera_window_runs": len(camera_runs),
        "run_file_bytes_each": round(last[1]["dagster: a file per run"] / max(len(runs), 1)),
        "samples": [{"s": round(t), **sizes} for t, sizes, _ in samples],
    }
    results = BENCH / "results"
    (results / "camera_disk.json").write_text(json.dumps(result, indent=1))
    lines = [
        "# Bytes per camera-hour (benchmarks/camera_disk.py)",
        "",
        f"Measured {result['measured_at']} over {result['minutes_counted']} min after warm-up; "
        f"{result['processed_fps']} frames processed per second; {len(runs)} runs ({len(camera_runs)} camera_window).",
        "",
        "| what | MB per hour | bytes per processed frame |",
        "|---|---|---|",
    ]
    for name in PARTS:
        lines.append(f"| {name} | {per_hour[name] / 2**20:.2f} | {result['bytes_per_processed_frame'].get(name, 0)} |")
    (results / "camera_disk.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
