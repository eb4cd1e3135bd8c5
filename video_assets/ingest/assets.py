"""raw_video: one dynamic partition per video, probed and recorded as materialization metadata."""

import dagster as dg

from video_assets.failures import VideoError, as_failure
from video_assets.ingest.library import VideoLibrary
from video_assets.ingest.probe import VideoProbe

VIDEO_GROUP = "videos"
VIDEO_PARTITIONS = "videos"
videos_partitions = dg.DynamicPartitionsDefinition(name=VIDEO_PARTITIONS)
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
    except VideoError as exc:  # a bad or missing file: fail this partition only, with what to do
        raise as_failure(exc) from exc
    return dg.Output(probe, metadata=probe.as_metadata())
