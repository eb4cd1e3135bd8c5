"""uploaded_video -> inference_job: the hosted steps before frame_predictions, one partition per video.

They exist in the graph when the deployment's backend kind is `hosted`. Their state lives in the
job ledger, not in an IO manager, so frame_predictions finds the job whether or not these steps
ran in the same run (a run that switches to `hosted` in run config does all steps inside
frame_predictions).
"""

from collections.abc import Callable
from typing import Any

import dagster as dg

from video_assets.backends.base import BackendError
from video_assets.backends.hosted.backend import KIND, HostedBackend, without_query
from video_assets.backends.resource import BackendSwitch
from video_assets.failures import as_failure
from video_assets.glossary import described
from video_assets.ingest.assets import VIDEO_GROUP, videos_partitions
from video_assets.ingest.probe import VideoProbe
from video_assets.runs import limit_runtime

SKIPPED = {"skipped": "Why nothing was done: another backend kind was chosen for this run."}
UPLOAD_METADATA = {
    "file": "The video file uploaded.",
    "bytes": "Its size.",
    "video_url": "Where the hosted API reads it (the signed URL, its signature left out).",
    "uploaded_at": "When it was uploaded (an earlier upload of the same content is reused).",
    "api_url": "The Roboflow API used.",
    **SKIPPED,
}
JOB_METADATA = {
    "job_id": "The hosted job's id (one per video, workflow or model, and fps; never submitted twice).",
    "target": "The workflow or model the job runs.",
    "fps": "Frames per second sampled from the video.",
    "spend_estimate_frames": "Frames the job will infer (the sampled ones).",
    "spend_estimate_credits": "Estimated Roboflow credits for them.",
    "submitted_at": "When the job was submitted.",
    "frames_submitted_in_ledger": "Frames submitted by every hosted job this installation has recorded.",
    **SKIPPED,
}


@dg.asset(
    partitions_def=videos_partitions,
    group_name=VIDEO_GROUP,
    kinds={"roboflow"},
    description=described(
        "The video uploaded to the hosted API's signed URL (streamed from disk; skipped if already uploaded).",
        UPLOAD_METADATA,
    ),
)
def uploaded_video(
    context: dg.AssetExecutionContext, raw_video: VideoProbe, backend: BackendSwitch
) -> dg.MaterializeResult:
    hosted = _hosted(context, backend, raw_video)
    if hosted is None:
        return _not_used(backend)
    limit_runtime(context, hosted.max_runtime_s(raw_video))
    row = _step(hosted.upload, raw_video, context)
    return dg.MaterializeResult(
        metadata={
            "file": raw_video.path,
            "bytes": raw_video.bytes,
            "video_url": without_query(row.video_url or ""),
            "uploaded_at": row.uploaded_at or "",
            "api_url": hosted.options.api_url,
        }
    )


@dg.asset(
    partitions_def=videos_partitions,
    group_name=VIDEO_GROUP,
    kinds={"roboflow"},
    deps=[uploaded_video],
    description=described(
        "One hosted inference job per (video, workflow or model, fps): submitted once, polled until done.", JOB_METADATA
    ),
)
def inference_job(
    context: dg.AssetExecutionContext, raw_video: VideoProbe, backend: BackendSwitch
) -> dg.MaterializeResult:
    hosted = _hosted(context, backend, raw_video)
    if hosted is None:
        return _not_used(backend)
    limit_runtime(context, hosted.max_runtime_s(raw_video))
    estimate = hosted.estimate(raw_video)
    recorded = hosted.job(raw_video)
    if recorded is None or recorded.job_id is None:
        # Shown before anything is submitted, so the UI has the estimate even if the run stops here.
        context.log_event(
            dg.AssetObservation(
                asset_key=context.asset_key,
                partition=context.partition_key,
                metadata={
                    "spend_estimate_frames": estimate.frames,
                    "spend_estimate_credits": estimate.credits,
                    "fps": estimate.fps,
                },
            )
        )
    row = _step(hosted.submit, raw_video, context)
    _step(hosted.wait, raw_video, context)
    return dg.MaterializeResult(
        metadata={
            "job_id": row.job_id or "",
            "target": hosted.options.target.identity,
            "fps": estimate.fps,
            "spend_estimate_frames": estimate.frames,
            "spend_estimate_credits": estimate.credits,
            "submitted_at": row.submitted_at or "",
            "frames_submitted_in_ledger": hosted.ledger.submitted_frames(),
        }
    )


def _hosted(context: dg.AssetExecutionContext, backend: BackendSwitch, video: VideoProbe) -> HostedBackend | None:
    if backend.kind != KIND.name:
        context.log.info(f"The backend for this run is {backend.kind}; the hosted steps have nothing to do.")
        return None
    try:
        hosted = backend.implementation(video.source)  # refused before anything is paid for, if it cannot run
    except BackendError as exc:
        exc.permanent = True  # a configuration problem: retrying cannot help
        raise as_failure(exc) from None
    assert isinstance(hosted, HostedBackend)
    return hosted


def _step(step: Callable[..., Any], video: VideoProbe, context: dg.AssetExecutionContext) -> Any:
    try:
        return step(video, context.log)
    except BackendError as exc:
        raise as_failure(exc, file=video.path) from None


def _not_used(backend: BackendSwitch) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"skipped": f"backend kind is {backend.kind} for this run"})
