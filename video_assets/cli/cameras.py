"""`video-assets cameras run|status`: the live cameras' ingest workers, and how each camera is doing."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from video_assets.settings import Settings
from video_assets.streams.cameras import CameraConfigError
from video_assets.streams.status import worker_health
from video_assets.streams.store import CameraStore
from video_assets.streams.supervisor import run_workers

echo = functools.partial(print, flush=True)


def run(settings: Settings, names: list[str]) -> int:
    from video_assets.runtime.instance import prepare_environment

    prepare_environment(settings)  # workers inherit VIDEO_ASSETS_HOME, so they write where Dagster reads
    return run_workers(settings, names, echo)


def status(settings: Settings) -> int:
    store = CameraStore.from_settings(settings)
    try:
        config = store.config()
    except CameraConfigError as exc:
        echo(f"video-assets: {exc}")
        return 2
    if not config.cameras:
        echo(f"No cameras configured in {config.path}.")
        return 0
    now = datetime.now(UTC)
    header = (
        "camera",
        "worker",
        "last frame (UTC)",
        "fps",
        "processed",
        "dropped",
        "gaps",
        "gap s",
        "reconnects",
        "url",
    )
    rows, errors = [], []
    for camera in config.cameras:
        state, health = worker_health(store.read_status(camera.name), now)
        last = health.get("last_frame_ts", "")
        age = f" ({health['seconds_since_last_frame']:.0f} s ago)" if last else ""
        rows.append(
            (
                camera.name,
                state,
                (last[:19].replace("T", " ") + age) if last else "-",
                health.get("fps", "-"),
                health.get("frames_processed", "-"),
                health.get("frames_dropped", "-"),
                health.get("gaps", "-"),
                health.get("gap_seconds", "-"),
                health.get("reconnects", "-"),
                camera.display_url,
            )
        )
        if state == "paused":
            errors.append(f"{camera.name}: paused: {health['worker_detail']}")
        if health.get("last_error"):
            errors.append(f"{camera.name}: last error: {health['last_error']}")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        echo("  ".join(str(value).ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())
    for line in errors:
        echo(line)
    return 0
