"""camera_window: one partition per camera per UTC hour, published from the workers' segments."""

from datetime import date
from typing import Any

import dagster as dg

from video_assets.failures import as_failure
from video_assets.glossary import described
from video_assets.predictions.store import PredictionStore
from video_assets.streams.cameras import CameraConfigError
from video_assets.streams.store import CameraStore, camera_video_id
from video_assets.streams.window import NoSegmentsError, WindowSummary, publish_window

CAMERA_GROUP = "cameras"
CAMERA_WINDOW = dg.AssetKey("camera_window")
# Everything computed per camera hour; the camera sensor runs it as the job publish_camera_hour.
CAMERA_ASSETS = dg.AssetSelection.groups(CAMERA_GROUP)
PUBLISH_CAMERA_HOUR = "publish_camera_hour"


def publish_camera_hour_job() -> Any:  # an unresolved asset job (its class is not public)
    """Made anew for each load of the definitions (see ingest.assets.process_video_job)."""
    return dg.define_asset_job(
        PUBLISH_CAMERA_HOUR,
        selection=CAMERA_ASSETS,
        description="One camera hour: publish its committed segments as tables, then its preview and tracks.",
    )


HOUR_FORMAT = "%Y-%m-%d-%H:%M"  # HourlyPartitionsDefinition's key format
CAMERA_NAMES = "cameras"
camera_names = dg.DynamicPartitionsDefinition(name=CAMERA_NAMES)  # added by the sensor from the camera file
GAPS_SHOWN = 20
METADATA = {
    "video_id": "The hour's id in the prediction tables: camera@YYYY-MM-DDTHH.",
    "segments": "Segments the camera worker committed for the hour.",
    "frames_processed": "Frames the workflow processed.",
    "frames_dropped": "Frames received but not processed (buffer full, or max_fps).",
    "dropped_pct": "frames_dropped as a percentage of frames received.",
    "first_frame_ts": "First frame received in the hour (UTC).",
    "last_frame_ts": "Last frame received in the hour (UTC).",
    "processed_fps": "Frames processed per second of the time the camera was delivering (processing speed).",
    "source_fps": "The frame rate the stream declares.",
    "reconnects": "Times the stream was opened again after being lost.",
    "gaps": "Intervals without any frame.",
    "gap_seconds": "Their total length.",
    "gap_list": "The latest gaps: start, end, length, cause, reconnect attempts.",
    "detections_file": "The hour's detections Parquet file.",
    "frames_file": "The hour's frames Parquet file.",
    "videos_file": "The hour's videos Parquet file (one row).",
    "camera_segments_file": "The hour's camera_segments Parquet file.",
    "camera_gaps_file": "The hour's camera_gaps Parquet file.",
}


def camera_partitions(start: date) -> dg.MultiPartitionsDefinition:
    """camera × hour. `end_offset=1` makes the hour still being recorded a partition too."""
    hours = dg.HourlyPartitionsDefinition(start_date=f"{start:%Y-%m-%d}-00:00", end_offset=1)
    return dg.MultiPartitionsDefinition({"camera": camera_names, "hour": hours})


def camera_partition_key(camera: str, hour_start) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"camera": camera, "hour": hour_start.strftime(HOUR_FORMAT)})


def build_camera_window(start: date) -> dg.AssetsDefinition:
    @dg.asset(
        name=CAMERA_WINDOW.path[-1],
        partitions_def=camera_partitions(start),
        group_name=CAMERA_GROUP,
        kinds={"parquet"},
        description=described(
            "One camera's hour of live predictions (detections, frames, videos tables) and its health "
            "(camera_segments, camera_gaps), published from the segments its ingest worker committed.",
            METADATA,
        ),
    )
    def camera_window(
        context: dg.AssetExecutionContext, cameras: CameraStore, store: PredictionStore
    ) -> dg.MaterializeResult:
        camera_name = context.partition_key.keys_by_dimension["camera"]
        hour = context.partition_time_window.start
        try:
            camera = cameras.config().get(camera_name)
        except CameraConfigError as exc:  # removed from the file, or the file is broken: publish what was recorded
            context.log.warning(str(exc))
            camera = None
        try:
            summary = publish_window(cameras, store.data(), camera_name, hour, camera)
        except NoSegmentsError as exc:
            raise as_failure(exc) from exc
        return dg.MaterializeResult(metadata=window_metadata(summary))

    return camera_window


def camera_window_video_id(context: dg.AssetExecutionContext) -> str:
    """The video_id a camera-hour partition's rows carry, e.g. lobby@2026-11-26T18."""
    return camera_video_id(context.partition_key.keys_by_dimension["camera"], context.partition_time_window.start)


def window_metadata(summary: WindowSummary) -> dict:
    """Health at a glance on the partition's page: last frame, fps, drops, gaps."""
    received = summary.frames_processed + summary.frames_dropped
    return {
        "dagster/row_count": summary.detections,
        "video_id": summary.video_id,
        "segments": summary.segments,
        "frames_processed": summary.frames_processed,
        "frames_dropped": summary.frames_dropped,
        "dropped_pct": round(100 * summary.frames_dropped / received, 2) if received else 0.0,
        "first_frame_ts": summary.first_frame_ts.isoformat() if summary.first_frame_ts else "",
        "last_frame_ts": summary.last_frame_ts.isoformat() if summary.last_frame_ts else "",
        "processed_fps": summary.processed_fps,
        "source_fps": summary.source_fps,
        "reconnects": summary.reconnects,
        "gaps": len(summary.gaps),
        "gap_seconds": round(summary.gap_seconds, 3),
        "gap_list": dg.MetadataValue.md(_gap_table(summary.gaps)),
        **{f"{table}_file": dg.MetadataValue.path(str(path)) for table, path in summary.files.items()},
    }


def _gap_table(gaps: list[dict]) -> str:
    if not gaps:
        return "No gaps."
    lines = ["| start (UTC) | end (UTC) | seconds | cause | reconnect attempts |", "|---|---|---|---|---|"]
    for gap in sorted(gaps, key=lambda g: g["gap_start"])[-GAPS_SHOWN:]:
        lines.append(
            f"| {gap['gap_start']:%H:%M:%S.%f} | {gap['gap_end']:%H:%M:%S.%f} | {gap['duration_s']:.3f} "
            f"| {gap['cause']} | {gap['reconnect_attempts']} |"
        )
    return "\n".join(lines)
