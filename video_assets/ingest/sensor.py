"""The drop-folder sensor: stable new videos become dynamic partitions and runs, in one SensorResult.

Below the disk guard's threshold (VIDEO_ASSETS_MIN_FREE) on the filesystems runs write to, a tick
launches nothing and leaves its cursor as it was, so the files are taken once space returns.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import dagster as dg

from video_assets.disk_guard import lowest_space
from video_assets.ingest.assets import PROCESS_VIDEO, VIDEO_PARTITIONS, videos_partitions
from video_assets.ingest.library import VideoLibrary
from video_assets.ingest.tick import DropCursor, Settlement, TickPlan, plan_tick
from video_assets.settings import DiskGuard

RAW_VIDEO = dg.AssetKey("raw_video")

SENSOR_NAME = "drop_folder_sensor"
QUEUE_TAG = "dagster-celery/queue"  # read by dagster-celery's run launcher
SOURCE_TAG = "video_assets/source"
FILE_TAG = "video_assets/file"


def build_drop_folder_sensor(
    interval_s: int, source_queues: Mapping[str, str], written: Sequence[Path], guard: DiskGuard
) -> dg.SensorDefinition:
    """`source_queues`: drop folder -> run-worker queue for its videos (e.g. a `gpu` queue for a model workflow);
    `written`: folders the runs write to (predictions, the instance), watched by the disk guard."""

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job_name=PROCESS_VIDEO,
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
            existing_keys=lambda: context.instance.get_dynamic_partitions(VIDEO_PARTITIONS),
            quiet_ns=2 * interval_s * 1_000_000_000,  # unchanged for two intervals: as settled as two ticks make it
        )
        _log_settlements(context, plan)
        # Many machines: each video is in the object store before its run is asked for (an upload that
        # fails fails the tick, and the next tick, from the same cursor, tries again).
        for settlement in plan.keys_to_run:
            if settlement.key and library.upload(settlement.file, settlement.key):
                context.log.info(f"Uploaded {settlement.file.path} to the object store as {settlement.key}")
        return dg.SensorResult(
            asset_events=skipped_file_observations(plan),
            run_requests=[_run_request(s, source_queues) for s in plan.keys_to_run],
            dynamic_partitions_requests=[videos_partitions.build_add_request(plan.new_keys)] if plan.new_keys else [],
            cursor=plan.cursor.to_json(),
            skip_reason=_skip_reason(plan),
        )

    return drop_folder_sensor


def _run_request(settlement: Settlement, source_queues: Mapping[str, str]) -> dg.RunRequest:
    # The key carries the content hash, so the run key means "this content, once".
    tags = {SOURCE_TAG: settlement.file.source, FILE_TAG: settlement.file.relative_path[:200]}
    return dg.RunRequest(
        partition_key=settlement.key,
        run_key=settlement.key,
        tags={**tags, **queue_tag(source_queues.get(settlement.file.source))},
    )


def queue_tag(queue: str | None) -> dict[str, str]:
    """The tag that sends a run to the workers of `queue` (`video-assets worker --queue Q`)."""
    return {QUEUE_TAG: queue} if queue else {}


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


def skipped_file_observations(plan: TickPlan) -> list[dg.AssetObservation]:
    """A file the sensor will not run, recorded on raw_video (Events tab of its page) besides the tick log:
    a duplicate on the partition of the video it duplicates, anything else unpartitioned."""
    observations = []
    for s in plan.settled:
        if s.outcome not in ("duplicate", "not_video"):
            continue
        reason = (
            f"same content as video {s.duplicate_of}"
            if s.outcome == "duplicate"
            else (f"not a video file (extension {s.file.path.suffix or 'none'}); move it out of the drop folder")
        )
        observations.append(
            dg.AssetObservation(
                asset_key=RAW_VIDEO,
                partition=s.duplicate_of if s.outcome == "duplicate" else None,
                description=f"Skipped {s.file.path}: {reason}",
                metadata={
                    "skipped_file": dg.MetadataValue.path(str(s.file.path)),
                    "source": s.file.source,
                    "skipped_because": s.outcome,
                    "detail": reason,
                },
            )
        )
    return observations


def _skip_reason(plan: TickPlan) -> str | None:
    if plan.keys_to_run:
        return None
    if plan.waiting or plan.deferred:
        return f"Waiting for {len(plan.waiting) + len(plan.deferred)} file(s) to stop changing."
    return "No new videos."
