"""raw_video: one dynamic partition per video, probed and recorded as materialization metadata."""

import dagster as dg

from video_assets.backends.base import PERMANENT
from video_assets.ingest.library import VideoLibrary, VideoNotFoundError
from video_assets.ingest.probe import UnreadableVideoError, VideoProbe

VIDEO_GROUP = "videos"
videos_partitions = dg.DynamicPartitionsDefinition(name="videos")
# Everything computed per video; the drop-folder sensor and backfills target this selection.
VIDEO_ASSETS = dg.AssetSelection.groups(VIDEO_GROUP)


@dg.asset(
    partitions_def=videos_partitions,
    group_name=VIDEO_GROUP,
    kinds={"video"},
    description="A video file from a drop folder: size, sha256, duration, fps, frames, resolution, codec.",
)
def raw_video(context: dg.AssetExecutionContext, library: VideoLibrary) -> dg.Output[VideoProbe]:
    try:
        probe = library.probe(context.partition_key)
    except (UnreadableVideoError, VideoNotFoundError) as exc:
        # Retrying cannot fix a bad file; fail this partition only, with what to do.
        raise dg.Failure(description=str(exc), allow_retries=False, metadata={PERMANENT: True}) from exc
    return dg.Output(probe, metadata=probe.as_metadata())
