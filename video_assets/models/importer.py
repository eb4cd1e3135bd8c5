"""`video-assets model import`: an exported detector (Ultralytics-style YOLO ONNX) made into a model package.

Ultralytics writes `names`, `imgsz` and `task` into an export's ONNX metadata, so the package's other
three files come from the .onnx itself; flags override them for exports without metadata. The export
must end in the raw detection head, output (1, 4 + classes, anchors) with NMS not fused in, which
inference decodes as `yolov8` (Ultralytics YOLOv5u, v8, v11 and v12 exports share it); inference runs
the NMS. Pictures are letterboxed to the export's input size with Ultralytics' grey (114) padding.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from video_assets.backends.self_hosted import DEFAULT_WORKFLOW_FILE
from video_assets.models.package import (
    CLASS_NAMES,
    INFERENCE_CONFIG,
    MODEL_CONFIG,
    WEIGHTS,
    ModelPackage,
    load_package,
)
from video_assets.storage import new_token, publish_folder, sweep_stale_temps, temp_path

ARCHITECTURE = "yolov8"
DETECTION_TASK = "object-detection"
DETECT_TASKS = ("detect", DETECTION_TASK)  # Ultralytics' name, inference's name
LETTERBOX_PADDING = 114
MODEL_STEP = "model"
DEFAULT_CONFIDENCE = 0.4
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")
_ABANDONED_BUILD_S = 3600.0


class ModelImportError(ValueError):
    """The weights cannot become a package; the message names the file and what to do."""


@dataclass(frozen=True)
class ExportFacts:
    """What an ONNX export says about itself (or what the flags say instead)."""

    classes: tuple[str, ...]
    input_size: tuple[int, int]  # height, width


def import_model(
    weights: Path,
    models_dir: Path,
    name: str | None = None,
    classes: list[str] | None = None,
    imgsz: tuple[int, int] | None = None,
    task: str | None = None,
    replace: bool = False,
) -> ModelPackage:
    """Write `models_dir/<name>/` from `weights`: built under a hidden name, checked, then renamed into place."""
    name = name or package_name(weights)
    if not _NAME.match(name) or ".." in name:
        raise ModelImportError(f"Model name {name!r} may use only letters, digits, '.', '-' and '_' (at most 60).")
    facts = read_export(weights, classes, imgsz, task)
    final = models_dir / name
    if final.exists() and not replace:
        raise ModelImportError(
            f"{final} already exists. Pass --replace to put these weights under the same name (videos processed "
            "with the old ones become stale, and the nightly backfill re-runs them), or choose another --name."
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(models_dir, _ABANDONED_BUILD_S)
    build = temp_path(final, new_token())
    try:
        build.mkdir()
        write_package(build, weights, facts)
        load_package(build)
        _swap_in(build, final)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return load_package(final)


def read_export(
    weights: Path, classes: list[str] | None = None, imgsz: tuple[int, int] | None = None, task: str | None = None
) -> ExportFacts:
    """Classes, input size and task from the export's metadata and shapes; flags win over metadata."""
    session = _session(weights)
    metadata = session.get_modelmeta().custom_metadata_map
    task = task or metadata.get("task")
    if task is None:
        raise ModelImportError(f"{weights} does not say its task (no `task` in its metadata): pass --task detect.")
    if task not in DETECT_TASKS:
        raise ModelImportError(
            f"{weights} is a {task!r} model; only object detectors (task `detect`) can be imported, for the "
            "workflow block roboflow_core/roboflow_object_detection_model@v2."
        )
    names = tuple(classes) if classes else _class_names(weights, metadata.get("names"))
    size = imgsz or _imgsz(weights, metadata.get("imgsz")) or _static_input_size(session)
    if size is None:
        raise ModelImportError(f"{weights} has a dynamic input size and no `imgsz` metadata: pass --imgsz (e.g. 640).")
    _check_shapes(weights, session, names, size)
    return ExportFacts(classes=names, input_size=size)


def write_package(folder: Path, weights: Path, facts: ExportFacts) -> None:
    """The four files inference's `yolov8` ONNX loader reads."""
    height, width = facts.input_size
    (folder / MODEL_CONFIG).write_text(
        json.dumps({"model_architecture": ARCHITECTURE, "task_type": DETECTION_TASK, "backend_type": "onnx"}, indent=1)
    )
    (folder / CLASS_NAMES).write_text("".join(f"{name}\n" for name in facts.classes))
    inference_config = {
        "network_input": {
            "training_input_size": {"height": height, "width": width},
            "dynamic_spatial_size_supported": False,
            "color_mode": "rgb",
            "resize_mode": "letterbox",
            "padding_value": LETTERBOX_PADDING,
            "input_channels": 3,
            "scaling_factor": 255,
        },
        "post_processing": {"type": "nms", "fused": False},
    }
    (folder / INFERENCE_CONFIG).write_text(json.dumps(inference_config, indent=1))
    shutil.copyfile(weights, folder / WEIGHTS)


def package_name(weights: Path) -> str:
    """The default name: the file's stem, folded to the characters a name may use."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", weights.stem).strip("._-")[:60] or "model"


def tracking_workflow(package: ModelPackage, confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Any]:
    """The shipped motion-tracking workflow with this model in place of motion detection: its boxes are
    tracked, counted at the line and timed in the zone, and stored as the `predictions` output."""
    spec = json.loads(Path(DEFAULT_WORKFLOW_FILE).read_text())
    motion = next(s for s in spec["steps"] if s["type"].startswith("roboflow_core/motion_detection"))
    text = json.dumps(spec).replace(f'"$steps.{motion["name"]}.detections"', f'"$steps.{MODEL_STEP}.predictions"')
    spec = json.loads(text)
    model_step = {
        "type": "roboflow_core/roboflow_object_detection_model@v2",
        "name": MODEL_STEP,
        "images": "$inputs.image",
        "model_id": str(package.path),
        "confidence": confidence,
    }
    spec["steps"] = [model_step if s["name"] == motion["name"] else s for s in spec["steps"]]
    return spec


def _swap_in(build: Path, final: Path) -> None:
    """Rename the new package into place; an old one under the name is moved aside first, then deleted."""
    old = temp_path(final, new_token()) if final.exists() else None
    if old is not None:
        os.rename(final, old)
    publish_folder(build, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _session(weights: Path) -> Any:
    import onnxruntime  # only this command and the runs load it

    if not weights.is_file():
        raise ModelImportError(f"{weights} does not exist (give the path of an exported .onnx file).")
    try:
        return onnxruntime.InferenceSession(str(weights), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for every kind of bad file
        raise ModelImportError(
            f"{weights} cannot be loaded as an ONNX model ({type(exc).__name__}: {exc}). Export it again, for "
            "example `yolo export model=best.pt format=onnx`."
        ) from None


def _class_names(weights: Path, raw: str | None) -> tuple[str, ...]:
    """Ultralytics writes `names` as a Python dict literal: {0: 'person', 1: 'bicycle', ...}."""
    if not raw:
        raise ModelImportError(f"{weights} has no `names` metadata: pass the classes in order, --classes person,car.")
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        names = None
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or sorted(names) != list(range(len(names))) or not names:
        raise ModelImportError(f"{weights}: its `names` metadata ({raw[:80]!r}) is not a class list; pass --classes.")
    return tuple(str(names[i]) for i in range(len(names)))


def _imgsz(weights: Path, raw: str | None) -> tuple[int, int] | None:
    if not raw:
        return None
    try:
        value = ast.literal_eval(raw)
        size = (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))
    except (ValueError, SyntaxError, TypeError, IndexError):
        raise ModelImportError(f"{weights}: its `imgsz` metadata ({raw!r}) is not a size; pass --imgsz.") from None
    return size


def _static_input_size(session: Any) -> tuple[int, int] | None:
    shape = session.get_inputs()[0].shape
    return (shape[2], shape[3]) if len(shape) == 4 and all(isinstance(d, int) for d in shape[2:]) else None


def _check_shapes(weights: Path, session: Any, classes: tuple[str, ...], size: tuple[int, int]) -> None:
    """One image input of the declared size; one output (1, 4 + classes, anchors)."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    shape = inputs[0].shape
    if len(inputs) != 1 or len(shape) != 4 or shape[1] not in (3, "3"):
        raise ModelImportError(
            f"{weights}: expected one image input (batch, 3, height, width), found {[i.shape for i in inputs]}."
        )
    static = _static_input_size(session)
    if static is not None and static != size:
        raise ModelImportError(
            f"{weights}: its input is {static[0]}x{static[1]} (height x width), not the {size[0]}x{size[1]} given."
        )
    channels = outputs[0].shape[1] if len(outputs) == 1 and len(outputs[0].shape) == 3 else None
    if channels is None or (isinstance(channels, int) and channels != 4 + len(classes)):
        raise ModelImportError(
            f"{weights}: expected one output (1, 4 + {len(classes)} classes, anchors), found "
            f"{[o.shape for o in outputs]}. Export the plain detection head (Ultralytics: format=onnx, nms=False; "
            "end-to-end heads such as YOLOv10/YOLO26 are not supported), or pass the right --classes."
        )
