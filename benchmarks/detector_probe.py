"""(h) measurements that need `inference`, torch or OpenCV loaded; a fresh process per call, prints one RESULT line.

    python benchmarks/detector_probe.py standin OUT.onnx                    # write the YOLOv8n-sized stand-in
    python benchmarks/detector_probe.py compare WORKFLOW VIDEO HOME REPEATS # ours vs bare with that workflow
    python benchmarks/detector_probe.py onnx WEIGHTS.onnx                   # the network alone (onnxruntime)
    python benchmarks/detector_probe.py cascade VIDEO                       # the Haar face cascade alone
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

# Before pipeline_probe (which sets OFFLINE_MODE) and before `inference` is imported: a model block may load a
# local package folder, as the run workers allow it (video_assets.backends.self_hosted.import_inference_pipeline).
os.environ.setdefault("ALLOW_INFERENCE_MODELS_DIRECTLY_ACCESS_LOCAL_PACKAGES", "True")

from pipeline_probe import bare_run, ours_run

STANDIN_SIZE = 640


def standin(out: str) -> dict:
    """A network with YOLOv8n's input (640x640) and detection head (1, 84, 8400), about its compute, random weights.

    Plain 3x3 convolutions (no C2f blocks), strides 8, 16, 32 like YOLOv8; class scores pass a sigmoid
    after a -12 bias, so no box reaches NMS: the time measured is the network's and the framework's.
    """
    import torch
    from torch import nn

    def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Module:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.SiLU())

    class StandIn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p3 = nn.Sequential(conv(3, 16, 2), conv(16, 32, 2), *(conv(32, 32) for _ in range(3)), conv(32, 64, 2),
                                    *(conv(64, 64) for _ in range(3)))
            self.p4 = nn.Sequential(conv(64, 128, 2), *(conv(128, 128) for _ in range(4)))
            self.p5 = nn.Sequential(conv(128, 256, 2), conv(256, 256), conv(256, 256))
            self.heads = nn.ModuleList(nn.Sequential(conv(c, 64), conv(64, 64), nn.Conv2d(64, 84, 1)) for c in (64, 128, 256))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            p3 = self.p3(images)
            p4 = self.p4(p3)
            p5 = self.p5(p4)
            maps = [head(p).flatten(2) for head, p in zip(self.heads, (p3, p4, p5), strict=True)]
            raw = torch.cat(maps, 2)  # (1, 84, 6400 + 1600 + 400)
            boxes = raw[:, :4].sigmoid() * STANDIN_SIZE
            return torch.cat([boxes, (raw[:, 4:] - 12).sigmoid()], 1)

    torch.manual_seed(0)
    model = StandIn().eval()
    example = torch.zeros(1, 3, STANDIN_SIZE, STANDIN_SIZE)
    with torch.no_grad():
        torch.onnx.export(model, example, out, input_names=["images"], output_names=["output0"], opset_version=17, dynamo=False)
    import onnx

    exported = onnx.load(out)
    names = {i: f"class{i}" for i in range(80)}
    for key, value in {"task": "detect", "names": str(names), "imgsz": f"[{STANDIN_SIZE}, {STANDIN_SIZE}]"}.items():
        exported.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.save(exported, out)
    gflops = _conv_gflops(model, example)
    return {"path": out, "gflops": round(gflops, 2), "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2)}


def _conv_gflops(model, example) -> float:
    """Multiply-adds x 2 of every convolution, counted with forward hooks."""
    import torch

    total = [0.0]

    def count(module, inputs, output) -> None:
        kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total[0] += 2.0 * output.numel() * kernel

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(example)
    for hook in hooks:
        hook.remove()
    return total[0] / 1e9


def compare(workflow: str, video: str, home: str, repeats: int) -> dict:
    spec = json.loads(Path(workflow).read_text())
    bare_run(video, spec)  # warm: imports, model load, workflow compilation, page cache
    bare, ours = [], []
    for _ in range(repeats):
        bare.append(bare_run(video, spec))
        ours.append(ours_run(video, Path(home), workflow_file=workflow))
    best = lambda runs: max(frames / seconds for frames, seconds in runs)  # noqa: E731
    return {"frames": bare[0][0], "bare_fps": best(bare), "ours_fps": best(ours),
            "bare_runs_s": [round(s, 2) for _, s in bare], "ours_runs_s": [round(s, 2) for _, s in ours]}


def onnx_alone(weights: str, runs: int = 20) -> dict:
    """The network's forward pass on one 640x640 input, as onnxruntime runs it for the model block (CPU)."""
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(weights, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    batch = np.random.default_rng(0).random((1, 3, STANDIN_SIZE, STANDIN_SIZE), dtype=np.float32)
    session.run(None, {name: batch})
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, {name: batch})
        times.append(time.perf_counter() - started)
    return {"ms": statistics.median(times) * 1000, "runs": runs}


def cascade_alone(video: str) -> dict:
    """The face workflow's detector alone: detectMultiScale with the workflow's parameters on every decoded frame."""
    import av
    import cv2

    from video_assets.backends.self_hosted import FACE_WORKFLOW_FILE

    step = next(s for s in json.loads(Path(FACE_WORKFLOW_FILE).read_text())["steps"] if s["name"] == "faces")
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    with av.open(video) as container:
        grays = [cv2.cvtColor(f.to_ndarray(format="bgr24"), cv2.COLOR_BGR2GRAY) for f in container.decode(video=0)]
    started = time.perf_counter()
    found = sum(
        len(cascade.detectMultiScale(g, scaleFactor=step["scale_factor"], minNeighbors=step["min_neighbors"],
                                     minSize=(step["min_size"], step["min_size"])))
        for g in grays
    )
    return {"ms": (time.perf_counter() - started) / len(grays) * 1000, "frames": len(grays), "faces": found}


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    handlers = {
        "standin": lambda: standin(args[0]),
        "compare": lambda: compare(args[0], args[1], args[2], int(args[3])),
        "onnx": lambda: onnx_alone(args[0]),
        "cascade": lambda: cascade_alone(args[0]),
    }
    result = handlers[mode]()
    sys.stdout.flush()
    print("RESULT " + json.dumps(result), flush=True)
