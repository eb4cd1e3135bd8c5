"""Camera configuration: which live streams to ingest, and how, from one TOML file.

```toml
segment_seconds = 60      # each worker commits a Parquet segment this often
refresh_seconds = 300     # Dagster re-materializes the hour still being recorded at most this often

[cameras.lobby]
url = "rtsp://viewer:${LOBBY_PASSWORD}@10.0.0.5:554/stream1"   # or https://.../live.m3u8, or 0 (webcam)
max_fps = 5
mode = "realtime"         # or "every_frame"
```

Passwords stay out of the file: `${NAME}` in a URL is replaced from the environment when the worker
connects, and URLs are only ever shown with their credentials replaced by `***`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from video_assets.backends.self_hosted import DEFAULT_DETECTIONS_OUTPUT, DEFAULT_WORKFLOW_FILE
from video_assets.settings import API_KEY_ENV, secret

Mode = Literal["realtime", "every_frame"]
MODES = ("realtime", "every_frame")
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,59}$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CAMERA_KEYS = {
    "url", "max_fps", "mode", "workflow", "workflow_parameters", "workspace", "workflow_id", "workflow_version",
    "detections_output", "gap_after_s", "rtsp_transport", "read_timeout_s",
}  # fmt: skip
_TOP_KEYS = {"segment_seconds", "refresh_seconds", "cameras"}


class CameraConfigError(ValueError):
    """The camera configuration is malformed; the message names the file, the camera and the fix."""


@dataclass(frozen=True)
class Camera:
    name: str
    url: str | int  # as configured: may hold ${ENV} references; an int is a local webcam index
    workflow_file: str = DEFAULT_WORKFLOW_FILE
    workflow_parameters: dict[str, Any] = field(default_factory=dict)
    workspace: str | None = None  # with workflow_id: a saved Roboflow workflow (needs ROBOFLOW_API_KEY)
    workflow_id: str | None = None
    workflow_version: str | None = None
    detections_output: str = DEFAULT_DETECTIONS_OUTPUT
    max_fps: float | None = None
    mode: Mode = "realtime"
    gap_after_s: float = 5.0  # no frame for longer than this is recorded as a gap
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    read_timeout_s: float = 5.0  # a read that waits longer counts as a lost connection (RTSP, HTTP)

    @property
    def kind(self) -> str:
        """rtsp, hls, http or webcam: recorded as the codec of a camera window."""
        if isinstance(self.url, int):
            return "webcam"
        scheme = urlsplit(self.url).scheme.lower()
        if scheme.startswith("rtsp"):
            return "rtsp"
        return "hls" if ".m3u8" in self.url.lower() else "http"

    @property
    def display_url(self) -> str:
        """The URL with any user name and password replaced by ***: safe for logs, metadata and Parquet."""
        if isinstance(self.url, int):
            return f"webcam {self.url}"
        return hide_credentials(self.url)

    def resolved_url(self, env: Mapping[str, str] | None = None) -> str | int:
        """The URL to connect to, with ${NAME} references filled from the environment (or `env`)."""
        if isinstance(self.url, int):
            return self.url
        env = env if env is not None else _secrets(self.url)
        missing = sorted({name for name in _ENV_REF.findall(self.url) if name not in env})
        if missing:
            raise CameraConfigError(
                f"Camera {self.name!r}: its URL uses {', '.join('${' + m + '}' for m in missing)}, "
                "which is not set in the environment. Export it before starting the camera workers."
            )
        return _ENV_REF.sub(lambda m: env[m.group(1)], self.url)

    def redact(self, text: str, env: Mapping[str, str] | None = None) -> str:
        """Remove every secret this camera's worker knows from a message: its resolved URL and password
        (OpenCV's errors quote them) and the Roboflow API key (a saved workflow's requests carry it)."""
        env = env if env is not None else {**_secrets(str(self.url)), **_secrets("${" + API_KEY_ENV + "}")}
        secrets = [env.get(API_KEY_ENV)]
        try:
            resolved = self.resolved_url(env)
        except CameraConfigError:
            resolved = None
        if isinstance(resolved, str):
            text = text.replace(resolved, self.display_url)
            secrets.append(urlsplit(resolved).password)
        for value in secrets:
            if value and len(value) >= 3:
                text = text.replace(value, "***")
        return text

    def capture_options(self) -> str:
        """OPENCV_FFMPEG_CAPTURE_OPTIONS for this camera's worker (each worker is its own process).

        `timeout` is FFmpeg's socket read timeout in microseconds: without it a dead RTSP read blocks
        for OpenCV's 30 s before the pipeline notices and reconnects.
        """
        return f"rtsp_transport;{self.rtsp_transport}|timeout;{round(self.read_timeout_s * 1_000_000)}"


@dataclass(frozen=True)
class CameraConfig:
    path: Path
    cameras: tuple[Camera, ...] = ()
    segment_s: float = 60.0
    refresh_s: float = 300.0

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def get(self, name: str) -> Camera:
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise CameraConfigError(
            f"No camera named {name!r} in {self.path}; configured: {', '.join(self.names) or 'none'}."
        )


def _secrets(text: str) -> dict[str, str]:
    """The values of the ${NAME} references in `text` that the environment sets."""
    found = {name: secret(name) for name in _ENV_REF.findall(text)}
    return {name: value for name, value in found.items() if value is not None}


def hide_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def load_camera_config(path: Path) -> CameraConfig:
    """Read and check the camera file; a missing file means no cameras."""
    if not path.exists():
        return CameraConfig(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CameraConfigError(f"{path} cannot be read as TOML: {exc}") from exc
    _reject_unknown(path, "the top level", data, _TOP_KEYS)
    cameras = data.get("cameras", {})
    if not isinstance(cameras, dict):
        raise CameraConfigError(f"{path}: `cameras` must be a table of cameras, like [cameras.lobby]")
    return CameraConfig(
        path=path,
        cameras=tuple(_camera(path, name, spec) for name, spec in cameras.items()),
        segment_s=_number(path, "segment_seconds", data.get("segment_seconds", 60.0), minimum=1.0),
        refresh_s=_number(path, "refresh_seconds", data.get("refresh_seconds", 300.0), minimum=0.0),
    )


def _camera(path: Path, name: str, spec: Any) -> Camera:
    where = f"{path} [cameras.{name}]"
    if not _NAME.match(name):
        raise CameraConfigError(
            f"{where}: camera names may use only letters, digits, '-' and '_' (at most 60), "
            "because they become partition keys and folder names"
        )
    if not isinstance(spec, dict):
        raise CameraConfigError(f"{where} must be a table with at least `url`")
    _reject_unknown(path, f"[cameras.{name}]", spec, _CAMERA_KEYS)
    mode = spec.get("mode", "realtime")
    if mode not in MODES:
        raise CameraConfigError(f"{where}: mode = {mode!r}; use one of {', '.join(MODES)}")
    transport = spec.get("rtsp_transport", "tcp")
    if transport not in ("tcp", "udp"):
        raise CameraConfigError(f"{where}: rtsp_transport = {transport!r}; use 'tcp' or 'udp'")
    max_fps = spec.get("max_fps")
    return Camera(
        name=name,
        url=_url(where, spec.get("url")),
        workflow_file=_workflow_file(where, path, spec.get("workflow")),
        workflow_parameters=dict(spec.get("workflow_parameters", {})),
        workspace=spec.get("workspace"),
        workflow_id=spec.get("workflow_id"),
        workflow_version=spec.get("workflow_version"),
        detections_output=spec.get("detections_output", DEFAULT_DETECTIONS_OUTPUT),
        max_fps=None if max_fps is None else _number(path, f"cameras.{name}.max_fps", max_fps, minimum=0.01),
        mode=mode,
        gap_after_s=_number(path, f"cameras.{name}.gap_after_s", spec.get("gap_after_s", 5.0), minimum=0.1),
        rtsp_transport=transport,
        read_timeout_s=_number(path, f"cameras.{name}.read_timeout_s", spec.get("read_timeout_s", 5.0), minimum=0.5),
    )


def _url(where: str, url: Any) -> str | int:
    if isinstance(url, int) and not isinstance(url, bool) and url >= 0:
        return url
    if isinstance(url, str) and url.strip().isdigit():
        return int(url)
    if isinstance(url, str) and urlsplit(url.strip()).scheme.lower() in STREAM_SCHEMES:
        return url.strip()
    raise CameraConfigError(
        f"{where}: url must be an rtsp:// or http(s):// stream (HLS: …/index.m3u8) or a webcam index like 0"
    )


def _workflow_file(where: str, config_path: Path, workflow: Any) -> str:
    if workflow is None:
        return DEFAULT_WORKFLOW_FILE
    resolved = (config_path.parent / str(workflow)).expanduser().resolve()
    if not resolved.is_file():
        raise CameraConfigError(
            f"{where}: workflow file {resolved} does not exist (paths are relative to {config_path.parent})"
        )
    return str(resolved)


def _number(path: Path, key: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise CameraConfigError(f"{path}: {key} = {value!r} must be a number of at least {minimum:g}")
    return float(value)


def _reject_unknown(path: Path, where: str, data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise CameraConfigError(f"{path}: unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")
