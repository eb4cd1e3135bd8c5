"""batch_job: the batch step before frame_predictions, one partition per video.

It exists in the graph when the deployment's backend kind is `batch`. It joins the video to a staging
batch, shows its spend estimate before anything is submitted, and materializes when the video's job is
done, with the job's metadata. Its state lives in the batch ledger, so frame_predictions finds the job
whether or not this step ran in the same run.
"""

import dagster as dg

from video_assets.backends.base import BackendError
from video_assets.backends.batch.backend import KIND, BatchBackend
from video_assets.backends.resource import BackendSwitch
from video_assets.failures import as_failure
from video_assets.ingest.assets import VIDEO_GROUP, videos_partitions
from video_assets.ingest.probe import VideoProbe
from video_assets.runs import limit_runtime


@dg.asset(
    partitions_def=videos_partitions,
    group_name=VIDEO_GROUP,
    kinds={"roboflow"},
    description="The video's Batch Processing job: videos ready together share one staging batch and one job, "
    "submitted once; materialized when the job is done.",
)
def batch_job(context: dg.AssetExecutionContext, raw_video: VideoProbe, backend: BackendSwitch) -> dg.MaterializeResult:
    if backend.kind != KIND.name:
        context.log.info(f"The backend for this run is {backend.kind}; the batch step has nothing to do.")
        return dg.MaterializeResult(metadata={"skipped": f"backend kind is {backend.kind} for this run"})
    batch = _batch(backend)
    limit_runtime(context, batch.max_runtime_s(raw_video))
    frames = batch.frames_expected(raw_video)
    try:
        joined = batch.join(raw_video, context.log)
        if joined.state == "waiting":  # shown before anything is submitted, so the UI has it even if the run stops here
            context.log_event(
                dg.AssetObservation(
                    asset_key=context.asset_key,
                    partition=context.partition_key,
                    metadata={
                        "spend_estimate_frames": frames,
                        "spend_estimate_credits": batch.credits(frames),
                        "staging_batch": joined.group_id or "",
                    },
                )
            )
        group = batch.wait(raw_video, context.log)
    except BackendError as exc:
        raise as_failure(exc, file=raw_video.path) from None
    members = [m for m in batch.ledger.members(group.group_id) if m.state not in ("dropped", "refused")]
    return dg.MaterializeResult(
        metadata={
            "job_id": group.job_id,
            "staging_batch": group.group_id,
            "results_batch": group.results_batch or "",
            "videos_in_job": len(members),
            "workflow": batch.identity().workflow_version,
            "max_video_fps": batch.options.job.max_video_fps,
            "machine_type": batch.options.job.machine_type,
            "spend_estimate_frames": frames,
            "spend_estimate_credits": batch.credits(frames),
            "job_spend_estimate_frames": group.frames_estimate or 0,
            "submitted_at": group.submitted_at or "",
            "frames_submitted_in_ledger": batch.ledger.submitted_frames(),
        }
    )


def _batch(backend: BackendSwitch) -> BatchBackend:
    try:
        batch = backend.implementation()
    except BackendError as exc:
        exc.permanent = True  # a configuration problem: retrying cannot help
        raise as_failure(exc) from None
    assert isinstance(batch, BatchBackend)
    return batch
