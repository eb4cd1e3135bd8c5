"""Measurements that need `inference` loaded; run in a fresh process per call, prints one JSON line.

    python benchmarks/pipeline_probe.py compare VIDEO HOME REPEATS   # (a) ours vs bare, warm imports
    python benchmarks/pipeline_probe.py decode VIDEO                 # (c) raw decode
    python benchmarks/pipeline_probe.py ablation VIDEO               # (c) where the time goes
    python benchmarks/pipeline_probe.py rss VIDEO HOME               # (d) peak RSS of one materialization
    python benchmarks/pipeline_probe.py bare VIDEO                   # one bare run (for parallel baselines)
    python benchmarks/pipeline_probe.py bare_many VIDEO...           # (h) clips one after another, one process
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OFFLINE_MODE", "true")
os.environ.setdefault("DISABLE_VERSION_CHECK", "true")
warnings.simplefilter("ignore")


def shipped_spec() -> dict:
    from video_assets.backends.self_hosted import SelfHostedBackend

    return SelfHostedBackend().load_spec()


def bare_run(video: str, spec: dict) -> tuple[int, float]:
    """The seed recipe: InferencePipeline.init_with_workflow with a sink that only counts."""
    from inference import InferencePipeline

    count = [0]
    started = time.perf_counter()
    pipeline = InferencePipeline.init_with_workflow(
        video_reference=video, workflow_specification=spec, on_prediction=lambda r, f: count.__setitem__(0, count[0] + 1)
    )
    pipeline.start()
    pipeline.join()
    pipeline.terminate()
    return count[0], time.perf_counter() - started


def ours_run(video: str, home: Path) -> tuple[int, float]:
    """raw_video + frame_predictions materialized through Dagster, Parquet written."""
    import dagster as dg

    from video_assets.definitions import build_definitions
    from video_assets.ingest.library import VideoLibrary
    from video_assets.settings import Settings

    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home)
    settings.inbox.mkdir(parents=True)
    os.link(video, settings.inbox / Path(video).name)
    defs = build_definitions(settings)
    library = VideoLibrary.from_settings(settings)
    [dropped] = library.scan()
    key = library.key_for(dropped)  # the sensor hashes the file before any run
    settings.dagster_home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(settings.dagster_home)) as instance:
        instance.add_dynamic_partitions("videos", [key])
        assets = [defs.get_assets_def("raw_video"), defs.get_assets_def("frame_predictions")]
        started = time.perf_counter()
        result = dg.materialize(assets, partition_key=key, instance=instance, resources=defs.resources)
        elapsed = time.perf_counter() - started
        frames = result.asset_materializations_for_node("frame_predictions")[0].metadata["frames_processed"].value
    return frames, elapsed


def compare(video: str, home: str, repeats: int) -> dict:
    spec = shipped_spec()
    bare_run(video, spec)  # warm: imports, OpenCV and workflow compilation, page cache
    bare, ours = [], []
    for _ in range(repeats):
        bare.append(bare_run(video, spec))
        ours.append(ours_run(video, Path(home)))
    best = lambda runs: max(frames / seconds for frames, seconds in runs)  # noqa: E731
    return {"frames": bare[0][0], "bare_fps": best(bare), "ours_fps": best(ours),
            "bare_runs_s": [round(s, 2) for _, s in bare], "ours_runs_s": [round(s, 2) for _, s in ours]}


def decode(video: str) -> dict:
    import av
    import cv2

    started, frames = time.perf_counter(), 0
    with av.open(video) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        for frame in container.decode(stream):
            frame.to_ndarray(format="bgr24")
            frames += 1
    pyav = frames / (time.perf_counter() - started)
    capture, started, frames = cv2.VideoCapture(video), time.perf_counter(), 0
    while capture.read()[0]:
        frames += 1
    return {"frames": frames, "pyav_1thread_fps": pyav, "opencv_fps": frames / (time.perf_counter() - started)}


def ablation(video: str) -> dict:
    """fps of the shipped workflow cut after each step: the differences show where the time goes."""
    spec = shipped_spec()
    bare_run(video, spec)
    results = {}
    for n in range(1, len(spec["steps"]) + 1):
        steps = spec["steps"][:n]
        names = {s["name"] for s in steps}
        outputs = [o for o in spec["outputs"] if o["selector"].split(".")[1] in names]
        cut = {**spec, "steps": steps, "outputs": outputs or [{"type": "JsonField", "name": "x", "selector": f"$steps.{steps[-1]['name']}.*"}]}
        frames, seconds = bare_run(video, cut)
        results[" + ".join(s["type"].split("/")[1] for s in steps)] = frames / seconds
    return results


def rss(video: str, home: str) -> dict:
    frames, seconds = ours_run(video, Path(home))
    return {"frames": frames, "fps": frames / seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bare(video: str) -> dict:
    frames, seconds = bare_run(video, shipped_spec())
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds}


def bare_many(videos: list[str]) -> dict:
    spec = shipped_spec()
    return {"frames": sum(bare_run(video, spec)[0] for video in videos)}


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    handlers = {"compare": lambda: compare(args[0], args[1], int(args[2])), "decode": lambda: decode(args[0]),
                "ablation": lambda: ablation(args[0]), "rss": lambda: rss(args[0], args[1]), "bare": lambda: bare(args[0]),
                "bare_many": lambda: bare_many(args)}
    result = handlers[mode]()
    sys.stdout.flush()
    print("RESULT " + json.dumps(result), flush=True)
