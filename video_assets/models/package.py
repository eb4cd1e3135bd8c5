"""A local model package: the folder that inference 1.8.3 loads when a model block's `model_id` is its path.

inference-models loads such a folder itself (with ALLOW_INFERENCE_MODELS_DIRECTLY_ACCESS_LOCAL_PACKAGES
set before `inference` is imported), and would also import Python code that the folder names
(`model_module`/`model_class` in model_config.json: `allow_local_code_packages` defaults to True). So
a folder is used only when its config names an architecture and a backend (a model that inference's
own code loads) and names no code, and, for an ONNX backend, it holds the files that loader reads.

A package's content hash (every file, name and bytes) goes into the workflow version written on every
row, so new weights under the same name make the partitions made with the old ones stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from video_assets.failures import VideoError

MODEL_CONFIG = "model_config.json"
WEIGHTS = "weights.onnx"
CLASS_NAMES = "class_names.txt"
INFERENCE_CONFIG = "inference_config.json"
ONNX_FILES = (MODEL_CONFIG, WEIGHTS, CLASS_NAMES, INFERENCE_CONFIG)
# Keys that make inference import Python from the folder, or load further folders alongside it.
CODE_KEYS = ("model_module", "model_class", "model_dependencies", "dependency_package_paths")
IMPORT_FIX = "video-assets model import WEIGHTS.onnx --name NAME"
_HASH_CHUNK = 1 << 20


class ModelPackageError(VideoError):
    """A referenced model package is missing or unusable; the message names its folder and the fix."""

    permanent_by_default = True  # a person must import or fix the package; retrying cannot help


@dataclass(frozen=True)
class ModelPackage:
    """A checked package: what inference will load from `path`."""

    path: Path
    architecture: str
    task: str
    backend: str
    classes: tuple[str, ...]
    input_size: tuple[int, int] | None  # height, width the network takes (None: not declared)

    @property
    def name(self) -> str:
        return self.path.name

    def content_hash(self) -> str:
        return content_hash(self.path)

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in _package_files(self.path))


def load_package(path: Path) -> ModelPackage:
    """Check the folder at `path` the way it will be used, or raise ModelPackageError saying what to do."""
    if not path.is_dir():
        raise ModelPackageError(
            f"Model package {path} does not exist. Import the weights there ({IMPORT_FIX}, which makes "
            f"{path.parent}/NAME), or point the workflow's model_id at an existing package folder."
        )
    config = _read_json(path / MODEL_CONFIG, path)
    code = [key for key in CODE_KEYS if config.get(key)]
    if code:
        raise ModelPackageError(
            f"Model package {path} is refused: {MODEL_CONFIG} sets {', '.join(code)}, which would make inference "
            "run Python code from that folder. Only packages that inference's own loaders read are used: re-import "
            f"the exported weights ({IMPORT_FIX})."
        )
    architecture, backend = config.get("model_architecture"), config.get("backend_type")
    if not (isinstance(architecture, str) and architecture and isinstance(backend, str) and backend):
        raise ModelPackageError(
            f"Model package {path}: {MODEL_CONFIG} must name `model_architecture` and `backend_type` (for example "
            f'{{"model_architecture": "yolov8", "task_type": "object-detection", "backend_type": "onnx"}}); '
            f"re-import the weights ({IMPORT_FIX})."
        )
    if backend == "onnx":
        missing = [name for name in ONNX_FILES if not (path / name).is_file() or (path / name).stat().st_size == 0]
        if missing:
            raise ModelPackageError(
                f"Model package {path} lacks {', '.join(missing)} (an ONNX package holds {', '.join(ONNX_FILES)}); "
                f"re-import the weights ({IMPORT_FIX})."
            )
        _read_json(path / INFERENCE_CONFIG, path)
    classes = _read_classes(path / CLASS_NAMES)
    return ModelPackage(
        path=path,
        architecture=architecture,
        task=str(config.get("task_type") or ""),
        backend=backend,
        classes=classes,
        input_size=_input_size(path),
    )


def installed_packages(models_dir: Path) -> list[tuple[Path, ModelPackage | ModelPackageError]]:
    """Every folder under `models_dir` (hidden ones are imports in progress), checked."""
    if not models_dir.is_dir():
        return []
    found: list[tuple[Path, ModelPackage | ModelPackageError]] = []
    for folder in sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            found.append((folder, load_package(folder)))
        except ModelPackageError as exc:
            found.append((folder, exc))
    return found


def local_model_ids(spec: dict[str, Any], parameters: dict[str, Any] | None = None) -> list[Path]:
    """The model packages a workflow spec loads from disk: every step's `model_id` that is an absolute path,
    given directly or through a `$inputs.NAME` parameter (its default, or the value in `parameters`)."""
    values = {i.get("name"): i.get("default_value") for i in spec.get("inputs", []) if isinstance(i, dict)}
    values.update(parameters or {})
    found = set()
    for step in spec.get("steps", []):
        model_id = step.get("model_id") if isinstance(step, dict) else None
        if isinstance(model_id, str) and model_id.startswith("$inputs."):
            model_id = values.get(model_id.removeprefix("$inputs."))
        if isinstance(model_id, str) and os.path.isabs(model_id):
            found.add(Path(model_id))
    return sorted(found)


def content_hash(path: Path) -> str:
    """sha256 over every file of the package (relative name and content), so any change shows."""
    digest = hashlib.sha256()
    for file in _package_files(path):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0" + _file_sha256(file).encode() + b"\n")
    return digest.hexdigest()


def _package_files(path: Path) -> list[Path]:
    return sorted(f for f in path.rglob("*") if f.is_file())


_file_hashes: dict[tuple[str, int, int, int], str] = {}


def _file_sha256(file: Path) -> str:
    """Memoized per process by (path, size, mtime, ctime): weights are hashed once, not at every run."""
    stat = file.stat()
    key = (str(file), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if key not in _file_hashes:
        digest = hashlib.sha256()
        with open(file, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
        _file_hashes[key] = digest.hexdigest()
    return _file_hashes[key]


def _read_json(file: Path, package: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise ModelPackageError(
            f"Model package {package} has no {file.name}. Import the weights ({IMPORT_FIX})."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelPackageError(
            f"Model package {package}: {file.name} cannot be read ({exc}); re-import the weights ({IMPORT_FIX})."
        ) from None
    if not isinstance(data, dict):
        raise ModelPackageError(
            f"Model package {package}: {file.name} is not a JSON object; re-import the weights ({IMPORT_FIX})."
        )
    return data


def _read_classes(file: Path) -> tuple[str, ...]:
    try:
        return tuple(line.strip() for line in file.read_text().splitlines() if line.strip())
    except (OSError, UnicodeDecodeError):
        return ()


def _input_size(package: Path) -> tuple[int, int] | None:
    try:
        size = json.loads((package / INFERENCE_CONFIG).read_text())["network_input"]["training_input_size"]
        return int(size["height"]), int(size["width"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
