"""`video-assets demo`: sample videos through two workflows, then what each video yielded.

The inbox gets the synthetic samples (motion tracking, the configured workflow). A second drop folder,
`faces` (VIDEO_ASSETS_HOME/faces), gets a clip of the astronaut photo sliding across the frame and
runs the shipped face-tracking workflow, a real detector (OpenCV's Haar cascade) that needs no
download: a drop folder may have its own workflow (VIDEO_ASSETS_SOURCE_WORKFLOWS). The demo sets
both variables for itself and the processes it starts, unless they already name a `faces` source.
"""

from __future__ import annotations

import os

from video_assets.backends.self_hosted import FACE_WORKFLOW_FILE
from video_assets.settings import Settings

FACES_SOURCE = "faces"
SUMMARY_SQL = """
select s.source, s.file, s.frames_processed as frames, s.detections, s.classes, s.tracks,
       coalesce(c.crossings, 0) as line_crossings
from video_summary as s
left join (select video_id, sum(crossings) as crossings from line_crossing_steps group by video_id) as c
    using (video_id)
order by s.source, s.file
"""


def face_source_environment(settings: Settings) -> dict[str, str]:
    """The variables that add the `faces` drop folder with the face-tracking workflow (none if it exists)."""
    if any(folder.source == FACES_SOURCE for folder in settings.drop_folders):
        return {}
    folders = ",".join(f"{folder.source}={folder.path}" for folder in settings.extra_drop_folders)
    workflows = str(settings.backend.values.get("source_workflows", "")).strip(" ,")
    return {
        "VIDEO_ASSETS_DROP_FOLDERS": ",".join(
            filter(None, [folders, f"{FACES_SOURCE}={settings.home / FACES_SOURCE}"])
        ),
        "VIDEO_ASSETS_SOURCE_WORKFLOWS": ",".join(filter(None, [workflows, f"{FACES_SOURCE}={FACE_WORKFLOW_FILE}"])),
    }


def demo(settings: Settings) -> int:
    from video_assets.cli.process import process
    from video_assets.cli.query import run_query
    from video_assets.ingest.files import scan_drop_folders
    from video_assets.samples import FACE_SAMPLE, write_sample, write_samples

    added = face_source_environment(settings)
    if added:
        os.environ.update(added)  # the daemon and the run workers read their settings from the environment
        settings = Settings.from_env()
        print("The demo watches a second drop folder with the face-tracking workflow; to keep it, export:")
        for name, value in added.items():
            print(f"  export {name}='{value}'")
    inbox, faces = settings.drop_folders[0], next(f for f in settings.drop_folders if f.source == FACES_SOURCE)
    if not any(f.is_video for f in scan_drop_folders([inbox])):
        written = write_samples(settings.inbox)
        print(f"Wrote {len(written)} sample videos into {settings.inbox}", flush=True)
    if not any(f.is_video for f in scan_drop_folders([faces])):
        faces.path.mkdir(parents=True, exist_ok=True)
        print(f"Wrote {write_sample(FACE_SAMPLE, faces.path / FACE_SAMPLE.name)}", flush=True)
    code = process(settings)
    if settings.warehouse_path.exists():
        print("\nWhat each video yielded (video-assets sql 'select * from video_summary'):")
        run_query(settings, SUMMARY_SQL)
    return code
