"""frame_predictions: run the configured backend over every frame of a video, land it as Parquet."""

import time

import dagster as dg

from video_assets.backends.base import PERMANENT, BackendError, VideoBackend
from video_assets.ingest.assets import VIDEO_GROUP, videos_partitions
from video_assets.ingest.probe import VideoProbe
from video_assets.predictions.store import PredictionStore
from video_assets.predictions.writer import NoFramesError, WriteSummary


@dg.asset(
    partitions_def=videos_partitions,
    group_name=VIDEO_GROUP,
    kinds={"parquet"},
    description="Per-frame predictions of the configured workflow: detections, frames and videos tables.",
    # Backend errors can be transient (network, a busy server); unreadable input is marked permanent.
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
def frame_predictions(
    context: dg.AssetExecutionContext, raw_video: VideoProbe, backend: VideoBackend, store: PredictionStore
) -> dg.MaterializeResult:
    started = time.monotonic()
    try:
        identity = backend.identity()
        with store.writer(raw_video, identity) as writer:
            backend.predict(raw_video, writer, context.log)
            summary = writer.commit()
    except NoFramesError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False, metadata={PERMANENT: True}) from exc
    except BackendError as exc:
        raise dg.Failure(description=str(exc), metadata={"file": raw_video.path}) from exc
    elapsed = time.monotonic() - started
    if summary.frames_missing:
        context.log.warning(
            f"{raw_video.path}: {summary.frames_processed} of {summary.frames_expected} frames processed "
            "(the container declares more frames than could be decoded)."
        )
    return dg.MaterializeResult(metadata=_metadata(summary, identity.backend, identity.workflow_version, elapsed))


def _metadata(summary: WriteSummary, backend: str, workflow_version: str, elapsed_s: float) -> dict:
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
        "processing_s": round(elapsed_s, 3),
        "frames_per_s": round(summary.frames_processed / elapsed_s, 1) if elapsed_s else 0.0,
        **{f"{table}_file": dg.MetadataValue.path(str(path)) for table, path in summary.files.items()},
    }
