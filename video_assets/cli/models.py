"""`video-assets model import|list`: local model packages under VIDEO_ASSETS_HOME/models/ (docs/own-model.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from video_assets.cli.tables import format_table
from video_assets.settings import Settings


def add_commands(commands: Any) -> None:
    """The `model` subcommand group, added to the `video-assets` parser's subcommands."""
    model = commands.add_parser("model", help="your own detector, offline: import exported ONNX weights, list packages")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    imports = model_commands.add_parser(
        "import",
        help="make an exported detector (Ultralytics-style YOLO ONNX) a model package under VIDEO_ASSETS_HOME/models/; "
        "prints a workflow that tracks its detections",
    )
    imports.add_argument("weights", type=Path, metavar="WEIGHTS.onnx")
    imports.add_argument("--name", help="package name (default: the file's name without .onnx)")
    imports.add_argument(
        "--classes",
        type=_class_list,
        help="class names in order, comma separated (default: the export's `names` metadata)",
    )
    imports.add_argument(
        "--imgsz",
        type=_imgsz,
        help="network input size, 640 or HEIGHT,WIDTH (default: the export's `imgsz` or input shape)",
    )
    imports.add_argument("--task", help="detect (default: the export's `task` metadata)")
    imports.add_argument(
        "--replace", action="store_true", help="put new weights under an existing name (old results become stale)"
    )
    model_commands.add_parser("list", help="the installed model packages, checked")


def run(settings: Settings, args: argparse.Namespace) -> int:
    return import_weights(settings, args) if args.model_command == "import" else list_models(settings)


def import_weights(settings: Settings, args: argparse.Namespace) -> int:
    """Messages go to stderr and the workflow to stdout, so `... > people.json` saves a runnable workflow."""
    from video_assets.models.importer import ModelImportError, import_model, tracking_workflow
    from video_assets.models.package import ModelPackageError

    try:
        package = import_model(
            args.weights.expanduser().resolve(),
            settings.models_dir,
            name=args.name,
            classes=args.classes,
            imgsz=args.imgsz,
            task=args.task,
            replace=args.replace,
        )
    except (ModelImportError, ModelPackageError) as exc:
        print(f"video-assets: {exc}", file=sys.stderr)
        return 2
    height, width = package.input_size or (0, 0)
    print(
        f"Imported {args.weights} as {package.path}: {package.architecture} {package.task}, {package.backend}, "
        f"input {height}x{width}, {len(package.classes)} classes ({_classes(package.classes)}).\n"
        "The workflow below (the shipped motion tracking with this model instead of motion detection) uses it. "
        "Save it, e.g. `> workflow.json`, then VIDEO_ASSETS_WORKFLOW=workflow.json for files, or "
        '`workflow = "workflow.json"` for a camera in cameras.toml. The step alone:\n'
        + json.dumps(next(s for s in tracking_workflow(package)["steps"] if s.get("model_id")), indent=1),
        file=sys.stderr,
    )
    print(json.dumps(tracking_workflow(package), indent=1))
    return 0


def list_models(settings: Settings) -> int:
    from video_assets.models.package import installed_packages

    found = installed_packages(settings.models_dir)
    if not found:
        print(f"No model packages in {settings.models_dir}; add one with `video-assets model import WEIGHTS.onnx`.")
        return 0
    rows = []
    for folder, package in found:
        if isinstance(package, Exception):
            rows.append((folder.name, "", "", "", "", "", f"unusable: {package}"))
            continue
        size = "x".join(map(str, package.input_size)) if package.input_size else "?"
        rows.append((
            package.name, f"{package.architecture}/{package.backend}", size, str(len(package.classes)), _classes(package.classes),
            f"{package.size_bytes() / 1e6:.1f}", f"ok, content {package.content_hash()[:12]}",
        ))  # fmt: skip
    print(format_table(("name", "model", "input", "classes", "names", "MB", "status"), rows))
    print(f'(in {settings.models_dir}; a workflow step loads one with "model_id": "<its absolute path>")')
    return 0


def _imgsz(text: str) -> tuple[int, int]:
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes, default=0) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not one size (640) or HEIGHT,WIDTH (480,640)")
    return (sizes[0], sizes[-1])


def _class_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of class names")
    return names


def _classes(names: tuple[str, ...], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f", … ({len(names)})" if len(names) > shown else "")
