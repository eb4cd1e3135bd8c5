"""Row m: what the preview and the track snapshots of a video cost, against its predictions' time.

A 1280x720 30 fps video (a 2 s GOP, like a camera's) runs through the job `process_video` in this
process, on a temporary home and instance, as a run worker would run it: frame_predictions' own
processing_s is the baseline (it includes keeping the pictures the preview shows), video_preview's
preview_s (tracks, reading the kept pictures and decoding any it lacks, drawing, writing) the cost.
Also reported: the preview's size.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from videos import synthetic_video


def measure_m(work: Path, seconds: float) -> dict:
    import dagster as dg

    from video_assets.definitions import build_definitions
    from video_assets.ingest.library import VideoLibrary
    from video_assets.settings import Settings

    video = synthetic_video(work / f"m720_{seconds:g}s.mp4", 1280, 720, 30, seconds)
    home = work / "home_l"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home)
    settings.inbox.mkdir(parents=True)
    shutil.copy2(video, settings.inbox / video.name)
    library = VideoLibrary.from_settings(settings)
    [key] = [library.key_for(f) for f in library.scan()]
    job = build_definitions(settings).resolve_job_def("process_video")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("videos", [key])
        result = job.execute_in_process(partition_key=key, instance=instance)
    predictions = _metadata(result, "frame_predictions")
    preview = _metadata(result, "video_preview")
    return {
        "video": f"1280x720 30 fps H.264 3 Mbit/s, GOP 60, {predictions['frames_processed']} frames",
        "m_predictions_s": predictions["processing_s"],
        "m_preview_s": preview["preview_s"],
        "m_ratio": preview["preview_s"] / predictions["processing_s"],
        "m_steps": preview["preview_steps"],
        "m_tracks": preview["tracks"],
        "m_snapshots": preview["snapshots"],
        "m_preview_kb": preview["preview_kb"],
    }


def _metadata(result, asset: str) -> dict:
    [event] = result.asset_materializations_for_node(asset)
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}
