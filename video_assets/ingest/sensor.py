"""The drop-folder sensor: stable new videos become dynamic partitions and runs, in one SensorResult.

Below the disk guard's threshold (VIDEO_ASSETS_MIN_FREE) on the filesystems runs write to, a tick
launches nothing and leaves its cursor as it was, so the files are taken once space returns.
"""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from video_assets.disk_guard import lowest_space
from video_assets.ingest.assets import VIDEO_ASSETS, videos_partitions
from video_assets.ingest.library import VideoLibrary
from video_assets.ingest.tick import DropCursor, Settlement, TickPlan, plan_tick
from video_assets.settings import DiskGuard

SENSOR_NAME = "drop_folder_sensor"
SOURCE_TAG = "video_assets/source"
FILE_TAG = "video_assets/file"


def build_drop_folder_sensor(interval_s: int, written: Sequence[Path], guard: DiskGuard) -> dg.SensorDefinition:
    """`written`: folders the runs write to (predictions, the instance), watched by the disk guard."""

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        target=VIDEO_ASSETS,
        description="Registers each video dropped into a drop folder as a partition and runs it, "
        "once its size and mtime stop changing.",
    )
    def drop_folder_sensor(context: dg.SensorEvaluationContext, library: VideoLibrary) -> dg.SensorResult:
        space = lowest_space(written, guard)
        if space.low:
            return dg.SensorResult(skip_reason=f"Not launching runs: {space.reason}.")
        plan = plan_tick(
            DropCursor.from_json(context.cursor),
            library.scan(),
            sha256=library.hashes().sha256,
            existing_keys=lambda: context.instance.get_dynamic_partitions(videos_partitions.name),
            quiet_ns=2 * interval_s * 1_000_000_000,  # unchanged for two intervals: as settled as two ticks make it
        )
        _log_settlements(context, plan)
        return dg.SensorResult(
            run_requests=[_run_request(s) for s in plan.keys_to_run],
            dynamic_partitions_requests=[videos_partitions.build_add_request(plan.new_keys)] if plan.new_keys else [],
            cursor=plan.cursor.to_json(),
            skip_reason=_skip_reason(plan),
        )

    return drop_folder_sensor


def _run_request(settlement: Settlement) -> dg.RunRequest:
    # The key carries the content hash, so the run key means "this content, once".
    return dg.RunRequest(
        partition_key=settlement.key,
        run_key=settlement.key,
        tags={SOURCE_TAG: settlement.file.source, FILE_TAG: settlement.file.relative_path[:200]},
    )


def _log_settlements(context: dg.SensorEvaluationContext, plan: TickPlan) -> None:
    for s in plan.settled:
        if s.outcome == "not_video":
            context.log.warning(
                f"Skipped {s.file.path}: not a video file (extension {s.file.path.suffix or 'none'}). "
                "Only video files (mp4, mov, mkv, avi, webm, ...) are processed; move it elsewhere."
            )
        elif s.outcome == "duplicate":
            context.log.info(f"Skipped {s.file.path}: same content as video {s.duplicate_of}.")
        else:
            context.log.info(f"{s.file.path} -> video {s.key} ({s.outcome})")


def _skip_reason(plan: TickPlan) -> str | None:
    if plan.keys_to_run:
        return None
    if plan.waiting or plan.deferred:
        return f"Waiting for {len(plan.waiting) + len(plan.deferred)} file(s) to stop changing."
    return "No new videos."
