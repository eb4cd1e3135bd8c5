"""The camera sensor: hours whose segments changed become camera_window runs; worker health is observed.

Each tick it (1) adds configured cameras to the `cameras` partitions, (2) requests a run for every
camera hour with new segments: at once for an hour that is over, at most every `refresh_seconds` for
the hour still being recorded, and (3) records each worker's status file as an observation of
camera_window, so the UI shows a camera that is down, or a worker that died, between materializations.
The cursor stays small: hours that are over and published fall behind a per-camera watermark.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from video_assets.streams.assets import (
    CAMERA_NAMES,
    CAMERA_WINDOW,
    PUBLISH_CAMERA_HOUR,
    camera_names,
    camera_partition_key,
)
from video_assets.streams.cameras import CameraConfigError
from video_assets.streams.status import worker_health
from video_assets.streams.store import CameraStore, segment_name, window_name, window_start

SENSOR_NAME = "camera_segments_sensor"
MAX_REQUESTS_PER_TICK = 50
FINAL_SLACK_S = 10.0  # after the hour and one segment length, a worker has committed all of it


@dataclass
class CameraCursor:
    settled: dict[str, str] = field(default_factory=dict)  # camera -> first hour not yet over-and-published
    requested: dict[str, dict[str, list]] = field(default_factory=dict)  # camera -> hour -> [fingerprint, epoch]
    observed: dict[str, list] = field(default_factory=dict)  # camera -> [worker state, epoch]

    @classmethod
    def from_json(cls, text: str | None) -> "CameraCursor":
        data = json.loads(text) if text else {}
        return cls(data.get("settled", {}), data.get("requested", {}), data.get("observed", {}))

    def to_json(self) -> str:
        return json.dumps(
            {"settled": self.settled, "requested": self.requested, "observed": self.observed},
            sort_keys=True,
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class WindowRequest:
    camera: str
    start: datetime
    fingerprint: str  # changes whenever a segment is committed to the hour

    @property
    def run_key(self) -> str:
        return f"{self.camera}|{window_name(self.start)}|{self.fingerprint}"


def list_windows(cameras: CameraStore, camera: str, since: str) -> dict[datetime, str]:
    """Hours named `since` or later that hold segments, with a fingerprint of their committed segments: one
    listing of the camera, and one per such hour (usually the hour being recorded, and maybe the last one)."""
    listing = {}
    for start in cameras.windows(camera):
        if window_name(start) >= since:
            segments = cameras.segments(camera, start)
            if segments:
                listing[start] = f"{len(segments)}:{segment_name(segments[-1])}"
    return listing


def plan_windows(
    cursor: CameraCursor,
    listings: dict[str, dict[datetime, str]],
    now: datetime,
    segment_s: float,
    refresh_s: float,
    max_requests: int = MAX_REQUESTS_PER_TICK,
) -> tuple[list[WindowRequest], CameraCursor]:
    """Which camera hours to publish now. Pure: no Dagster, no files."""

    def is_over(start: datetime) -> bool:  # every segment of the hour has been committed by now
        return now >= start + timedelta(hours=1, seconds=segment_s + FINAL_SLACK_S)

    requests: list[WindowRequest] = []
    settled, requested = dict(cursor.settled), {c: dict(h) for c, h in cursor.requested.items()}
    for camera, listing in sorted(listings.items()):
        mine = requested.setdefault(camera, {})
        windows = {start: fp for start, fp in sorted(listing.items()) if window_name(start) >= settled.get(camera, "")}
        for start, fingerprint in windows.items():
            fingerprint_then, requested_at = mine.get(window_name(start), (None, 0.0))
            if fingerprint_then == fingerprint or len(requests) >= max_requests:
                continue
            if is_over(start) or now.timestamp() - requested_at >= refresh_s:
                requests.append(WindowRequest(camera, start, fingerprint))
                mine[window_name(start)] = [fingerprint, now.timestamp()]
        # Hours that are over and published in their final form need no more looking at.
        for start, fingerprint in windows.items():
            if not is_over(start) or mine.get(window_name(start), [None])[0] != fingerprint:
                break
            settled[camera] = window_name(start + timedelta(hours=1))
            del mine[window_name(start)]
    return requests, CameraCursor(settled, requested, dict(cursor.observed))


def build_camera_sensor(interval_s: int, first_day: date) -> dg.SensorDefinition:
    """`first_day`: where the hour partitions start (VIDEO_ASSETS_CAMERAS_START); earlier hours are not published."""
    first_hour = window_name(datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC))

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job_name=PUBLISH_CAMERA_HOUR,
        description="Publishes camera hours whose ingest workers committed new segments, and observes "
        "each worker's health (state, last frame, fps, drops, gaps).",
    )
    def camera_segments_sensor(context: dg.SensorEvaluationContext, cameras: CameraStore) -> dg.SensorResult:
        try:
            config = cameras.config()
        except CameraConfigError as exc:
            context.log.error(str(exc))
            return dg.SensorResult(skip_reason=f"Camera configuration is broken: {exc}")
        now = datetime.now(UTC)
        cursor = CameraCursor.from_json(context.cursor)
        known = set(context.instance.get_dynamic_partitions(CAMERA_NAMES))
        listings = {
            name: list_windows(cameras, name, max(cursor.settled.get(name, ""), first_hour)) for name in config.names
        }
        requests, cursor = plan_windows(cursor, listings, now, config.segment_s, config.refresh_s)
        observations = _observe(cameras, [n for n in config.names if n in known], cursor, now, config.refresh_s)
        new_cameras = [n for n in config.names if n not in known]
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(partition_key=camera_partition_key(r.camera, r.start), run_key=r.run_key)
                for r in requests
            ],
            dynamic_partitions_requests=[camera_names.build_add_request(new_cameras)] if new_cameras else [],
            asset_events=observations,
            cursor=cursor.to_json(),
            skip_reason=None if requests else "No camera hour has new segments.",
        )

    return camera_segments_sensor


def _observe(
    cameras: CameraStore, names: list[str], cursor: CameraCursor, now: datetime, refresh_s: float
) -> list[dg.AssetObservation]:
    """An observation per camera whose worker state changed, or at least every `refresh_s`."""
    observations = []
    for name in names:
        state, metadata = worker_health(cameras.read_status(name), now)
        previous = cursor.observed.get(name)
        if previous and previous[0] == state and now.timestamp() - previous[1] < max(refresh_s, 60.0):
            continue
        cursor.observed[name] = [state, now.timestamp()]
        observations.append(
            dg.AssetObservation(
                asset_key=CAMERA_WINDOW, partition=camera_partition_key(name, window_start(now)), metadata=metadata
            )
        )
    return observations
