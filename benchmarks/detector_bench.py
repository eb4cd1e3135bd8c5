"""(l) Your own detector, offline: detector workflows end to end ÷ a bare InferencePipeline with the same workflow
(goal ≥ 0.95), and the detector alone in ms/frame, so users can size machines.

Two detectors on the same 640x360 clip (the astronaut photo drifting across the frame):
- a model package made by `video-assets model import` from a stand-in with YOLOv8n's input (640) and
  output head (1, 84, 8400) and about its compute (random weights: no box passes the threshold, so
  NMS and the tracker cost nothing); the workflow is the one `model import` prints;
- the shipped face-tracking workflow (OpenCV's Haar cascade in a custom Python block).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def measure_detector(work: Path, frames: int, repeats: int) -> dict:
    from video_assets.backends.self_hosted import FACE_WORKFLOW_FILE
    from video_assets.models.importer import import_model, tracking_workflow
    from video_assets.samples import FACE_SAMPLE, write_sample

    [photo] = FACE_SAMPLE.objects
    drifting = replace(FACE_SAMPLE, name=f"h_faces_{frames}.mp4", frames=frames,
                       objects=(replace(photo, speed_px=360 / frames),))  # stays in the picture for any length
    clip = work / drifting.name
    if not clip.exists():
        write_sample(drifting, clip)
    weights = work / "h_standin.onnx"
    standin = _probe("standin", str(weights))
    package = import_model(weights, work / "h_models", name="standin", replace=True)
    model_workflow = work / "h_standin_workflow.json"
    model_workflow.write_text(json.dumps(tracking_workflow(package)))

    load_before = os.getloadavg()[0]
    model = _probe("compare", str(model_workflow), str(clip), str(work / "home_l"), str(repeats))
    faces = _probe("compare", FACE_WORKFLOW_FILE, str(clip), str(work / "home_l"), str(repeats))
    return {
        "h_load_avg": f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (1-minute load average, {os.cpu_count()} cores)",
        "video": f"640x360 15 fps H.264, {model['frames']} frames",
        "h_model": f"stand-in with YOLOv8n's input 640 and head (1, 84, 8400): {standin['gflops']} GFLOPs, "
                   f"{standin['params_m']} M parameters, random weights",
        "h_model_ours_fps": model["ours_fps"],
        "h_model_bare_fps": model["bare_fps"],
        "h_model_ratio": model["ours_fps"] / model["bare_fps"],
        "h_model_runs_s": {"bare": model["bare_runs_s"], "ours": model["ours_runs_s"]},
        "h_model_alone_ms": _probe("onnx", str(weights))["ms"],
        "h_faces_ours_fps": faces["ours_fps"],
        "h_faces_bare_fps": faces["bare_fps"],
        "h_faces_ratio": faces["ours_fps"] / faces["bare_fps"],
        "h_faces_runs_s": {"bare": faces["bare_runs_s"], "ours": faces["ours_runs_s"]},
        "h_cascade_alone_ms": _probe("cascade", str(clip))["ms"],
    }


def detector_rows(h: dict) -> list[tuple[str, str, str, str]]:
    """The report's rows: (measurement, result, target, details)."""
    model_ms, faces_ms = 1000 / h["h_model_bare_fps"], 1000 / h["h_faces_bare_fps"]
    return [
        ("l. own ONNX model workflow, end-to-end ÷ bare InferencePipeline (fps)",
         f"{h['h_model_ours_fps']:.2f} ÷ {h['h_model_bare_fps']:.2f} = **{h['h_model_ratio']:.2f}**", "≥ 0.95",
         f"{h['video']}; {h['h_model']}; network alone (onnxruntime, CPU) {h['h_model_alone_ms']:.0f} ms/frame, "
         f"whole bare pipeline {model_ms:.0f} ms/frame; run s {h['h_model_runs_s']}; load {h['h_load_avg']}"),
        ("l. face workflow (Haar cascade), end-to-end ÷ bare InferencePipeline (fps)",
         f"{h['h_faces_ours_fps']:.1f} ÷ {h['h_faces_bare_fps']:.1f} = **{h['h_faces_ratio']:.2f}**", "≥ 0.95",
         f"{h['video']}; cascade alone {h['h_cascade_alone_ms']:.1f} ms/frame, whole bare pipeline {faces_ms:.1f} ms/frame; "
         f"run s {h['h_faces_runs_s']}"),
    ]  # fmt: skip


def _probe(*args: str) -> dict:
    """detector_probe.py in a fresh interpreter (inference, torch and OpenCV stay out of the harness)."""
    out = subprocess.run([sys.executable, str(BENCH / "detector_probe.py"), *args], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": f"{REPO}:{BENCH}"})
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"detector_probe {args[0]} failed:\n{out.stderr[-4000:]}")

