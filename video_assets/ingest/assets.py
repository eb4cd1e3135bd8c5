"""raw_video: one dynamic partition per video, probed and recorded as materialization metadata."""

from typing import Any

import dagster as dg

from video_assets.failures import VideoError, as_failure
from video_assets.glossary import described
from video_assets.ingest.library import VideoLibrary
from video_assets.ingest.probe import VideoProbe

VIDEO_GROUP = "videos"
VIDEO_PARTITIONS = "videos"
videos_partitions = dg.DynamicPartitionsDefinition(name=VIDEO_PARTITIONS)
METADATA = {
    "source": "The drop folder it was found in.",
    "file": "Its path relative to the drop folder.",
    "video_path": "Where the video file is on disk.",
    "path": "Where Dagster's IO manager keeps this step's output (a pickle of the probe), not the video: see video_path.",
    "bytes": "File size.",
    "sha256": "Content hash; its first 12 digits end the partition key.",
    "duration_s": "Length of the video in seconds.",
    "fps": "The video's own frame rate.",
    "frame_count": "Frames the container declares.",
    "width": "Width of the picture as displayed (after rotation): the picture the model sees.",
    "height": "Height of the picture as displayed (after rotation).",
    "resolution": "width x height as displayed.",
    "rotation": "Degrees counterclockwise the stored picture is turned for display (phone clips: 90 or 270).",
    "codec": "Video codec.",
    "recorded_at": "UTC start of the recording: the container's creation_time, else the file's mtime minus its duration.",
}
# Everything computed per video; the drop-folder sensor and backfills run it as the job process_video.
VIDEO_ASSETS = dg.AssetSelection.groups(VIDEO_GROUP)
PROCESS_VIDEO = "process_video"


def process_video_job() -> Any:  # an unresolved asset job (its class is not public)
    """Made anew for each load of the definitions: a job object kept across loads (in a warm run worker)
    would keep the asset graph, and the code versions, of the first load."""
    return dg.define_asset_job(
        PROCESS_VIDEO,
        selection=VIDEO_ASSETS,
        description="One video: probe it, run the workflow over its frames, then its preview and tracks.",
    )


@dg.asset(
    partitions_def=videos_partitions,
    group_name=VIDEO_GROUP,
    kinds={"video"},
    description=described(
        "A video file from a drop folder: size, sha256, duration, fps, frames, resolution, codec.", METADATA
    ),
)
def raw_video(context: dg.AssetExecutionContext, library: VideoLibrary) -> dg.Output[VideoProbe]:
    try:
        probe = library.probe(context.partition_key)
    except VideoError as exc:  # a bad or missing file: fail this partition only, with what to do
        raise as_failure(exc) from exc
    return dg.Output(probe, metadata=probe.as_metadata())
