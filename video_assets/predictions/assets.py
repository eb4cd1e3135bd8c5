"""frame_predictions: run the configured backend over every frame of a video, land it as Parquet."""

import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from video_assets.backends.resource import BackendSwitch
from video_assets.failures import VideoError, as_failure
from video_assets.glossary import described
from video_assets.ingest.assets import VIDEO_GROUP, videos_partitions
from video_assets.ingest.probe import VideoProbe
from video_assets.predictions.progress import ProgressLog
from video_assets.predictions.store import PredictionStore
from video_assets.predictions.writer import WriteSummary
from video_assets.runs import limit_runtime

FRAME_PREDICTIONS = dg.AssetKey("frame_predictions")
FRAMES_CHECK = "all_frames_processed"
METADATA = {
    "source": "The drop folder of the video, whose workflow ran (VIDEO_ASSETS_SOURCE_WORKFLOWS).",
    "frames_expected": "Frames the backend meant to process: every frame, or the hosted backend's sampled ones.",
    "frames_processed": "Frames that have a row in the frames table.",
    "frames_missing": "frames_expected - frames_processed (see the all_frames_processed check).",
    "detections": "Boxes stored in the detections table.",
    "tracks": "Distinct tracker ids among them.",
    "classes": "Classes detected.",
    "backend": "The backend kind that ran the workflow.",
    "workflow_version": "`inline:` and 12 hex digits of the spec hash, or workspace/workflow@version of a saved workflow; on every row too.",
    "video_fps": "The video's own frame rate.",
    "video_duration_s": "The video's length in seconds.",
    "video_resolution": "width x height of the picture the model saw (rotation applied).",
    "rotation": "Degrees counterclockwise the stored picture is turned for display (phone clips).",
    "processing_s": "Wall time of this step: decoding, inference and writing.",
    "processing_fps": "Processing speed: frames processed per second of processing_s (not the video's rate).",
    "worker_rss_mb": "Resident memory of the run worker afterwards; growth from run to run would be a leak.",
    "host": "The machine whose run worker processed the video (many machines: docs/many-machines.md).",
    "detections_file": "The detections Parquet file of this video.",
    "frames_file": "The frames Parquet file of this video.",
    "videos_file": "The videos Parquet file (one row) of this video.",
    "pictures_file": "The frames and object crops kept for video_preview as the frames went by (empty for a hosted backend).",
}


def build_frame_predictions(
    after: Sequence[dg.AssetKey] = (), workflow_version: str | None = None
) -> dg.AssetsDefinition:
    """frame_predictions, run after `after` (the hosted steps) when the graph has them.

    The configured workflow version is the asset's code version, so Dagster marks every partition
    made by another workflow stale; each materialization's data version is (video content, workflow).
    (With per-source workflows the code version is all of them together, so Dagster's flag is coarse:
    the nightly backfill compares each partition with its own source's workflow.)
    """

    @dg.asset(
        key=FRAME_PREDICTIONS,
        partitions_def=videos_partitions,
        group_name=VIDEO_GROUP,
        kinds={"parquet"},
        deps=list(after),
        code_version=workflow_version,
        description=described(
            "Per-frame predictions of the configured workflow: detections, frames and videos tables.", METADATA
        ),
        check_specs=[
            dg.AssetCheckSpec(
                FRAMES_CHECK,
                asset=FRAME_PREDICTIONS,
                description="Every expected frame was processed (WARN when some are missing).",
            )
        ],
        # Backend errors can be transient (network, a busy server); unusable input and errors that need
        # a person (a failed hosted job, a budget) are marked permanent and not retried.
        retry_policy=dg.RetryPolicy(
            max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
        ),
    )
    def frame_predictions(
        context: dg.AssetExecutionContext, raw_video: VideoProbe, backend: BackendSwitch, store: PredictionStore
    ) -> dg.MaterializeResult:
        started = time.monotonic()
        try:
            limit_runtime(context, backend.max_runtime_s(raw_video))
            identity = backend.identity(raw_video.source)
            expected = backend.frames_expected(raw_video)
            with store.writer(raw_video, identity, expected) as writer:
                backend.predict(raw_video, ProgressLog(writer, expected, context.log, raw_video.video_id), context.log)
                summary = writer.commit()
        except VideoError as exc:
            raise as_failure(exc) from exc
        except dg.DagsterExecutionInterruptedError:
            # Terminated (from the UI, or by run monitoring): without this, the RetryPolicy would run it again.
            raise dg.Failure(
                description="The run was terminated while processing this video.", allow_retries=False
            ) from None
        elapsed = time.monotonic() - started
        if summary.frames_missing:
            context.log.warning(
                f"{raw_video.path}: {summary.frames_processed} of {summary.frames_expected} frames processed "
                "(the container declares more frames than could be decoded, or the backend lost some)."
            )
        return dg.MaterializeResult(
            metadata={
                "source": raw_video.source,
                **_metadata(summary, raw_video, identity.backend, identity.workflow_version, elapsed),
            },
            data_version=dg.DataVersion(f"{raw_video.sha256[:12]}:{identity.workflow_version}"),
            check_results=[frames_check(summary)],
        )

    return frame_predictions


def frames_check(summary: WriteSummary) -> dg.AssetCheckResult:
    """WARN, not ERROR: the frames that were processed are good; a person decides whether the gap matters."""
    return dg.AssetCheckResult(
        check_name=FRAMES_CHECK,
        passed=summary.frames_missing == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{summary.frames_processed} of {summary.frames_expected} expected frames processed",
        metadata={
            "frames_expected": summary.frames_expected,
            "frames_processed": summary.frames_processed,
            "frames_missing": summary.frames_missing,
        },
    )


def _metadata(summary: WriteSummary, video: VideoProbe, backend: str, workflow_version: str, elapsed_s: float) -> dict:
    return {
        "dagster/row_count": summary.detections,
        "frames_expected": summary.frames_expected,
        "frames_processed": summary.frames_processed,
        "frames_missing": summary.frames_missing,
        "detections": summary.detections,
        "tracks": summary.tracks,
        "classes": ", ".join(summary.classes) or "(none)",
        "backend": backend,
        "workflow_version": workflow_version,
        "video_fps": video.media.fps,
        "video_duration_s": video.media.duration_s,
        "video_resolution": video.media.resolution,
        "rotation": video.media.rotation,
        "processing_s": round(elapsed_s, 3),
        "processing_fps": round(summary.frames_processed / elapsed_s, 1) if elapsed_s else 0.0,
        # Run workers live on between runs: a value that keeps growing from run to run is a leak.
        "worker_rss_mb": round(_rss_bytes() / 2**20, 1),
        "host": socket.gethostname(),
        **{f"{table}_file": dg.MetadataValue.path(str(path)) for table, path in summary.files.items()},
    }


def _rss_bytes() -> int:
    """Resident memory of this process now (Linux), 0 where /proc is not there."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
