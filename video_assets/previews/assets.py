"""video_preview and camera_preview: pictures of each video and camera hour, and its tracks table.

Downstream of the predictions (they run after them, in the same run, and never slow them): each
reads the stored detections, replays them for line crossings and zone entries, writes the `tracks`
table with a snapshot per object, and records a contact sheet, an activity chart and the top tracks
as Markdown images the UI shows on the partition's page (see store.py for why images go by URL).
"""

import time
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg

from video_assets.backends.resource import BackendSwitch
from video_assets.backends.self_hosted import SelfHostedBackend, spec_hash
from video_assets.failures import VideoError, as_failure
from video_assets.glossary import described
from video_assets.ingest.assets import VIDEO_GROUP, videos_partitions
from video_assets.ingest.probe import VideoProbe
from video_assets.predictions.assets import FRAME_PREDICTIONS
from video_assets.previews.build import PreviewResult, VideoTables, build_preview
from video_assets.previews.geometry import geometry_for
from video_assets.previews.store import MARKDOWN_INLINE_LIMIT, PreviewStore
from video_assets.streams.assets import CAMERA_GROUP, CAMERA_WINDOW, camera_partitions
from video_assets.streams.cameras import CameraConfigError
from video_assets.streams.store import CameraStore, camera_video_id

VIDEO_PREVIEW = dg.AssetKey("video_preview")
CAMERA_PREVIEW = dg.AssetKey("camera_preview")
TOP_TRACKS = 6

METADATA = {
    "contact_sheet": "Evenly spaced frames with the stored boxes, tracker ids, and the workflow's line and zone.",
    "activity": "Detections per processed frame over the video, one line per class; line crossings marked on top.",
    "top_tracks": "The objects seen longest (crossings first), each with its snapshot at its best frame.",
    "tracks": "Tracked objects in the `tracks` table for this video.",
    "snapshots": "Tracks with a JPEG snapshot (the ones seen longest, up to 200 per video).",
    "line_crossings": "Line crossings of all tracks, found by replaying the stored boxes through the workflow's line counters.",
    "zone_entries": "Tracks that entered a zone of the workflow.",
    "geometry": "The lines and zones drawn and replayed, or why there are none.",
    "preview_kb": "Size of the contact sheet and the chart together (bounded to 300 KB).",
    "preview_s": "Time to make the preview and the tracks (reading, decoding, drawing, writing).",
    "preview_steps": "Where preview_s went: tracks (replaying the boxes), pictures (decoding, crops), render, write.",
    "tracks_file": "The tracks Parquet file of this video (snapshots are in the snapshots-* folder beside it): "
    "a local path, or an s3:// uri on many machines.",
    "contact_sheet_file": "The contact sheet: a local path, or an s3:// uri on many machines.",
}


def video_time(offset_s: float) -> str:
    minutes, seconds = divmod(offset_s, 60)
    return f"{int(minutes):02d}:{seconds:04.1f}"


def build_video_preview() -> dg.AssetsDefinition:
    @dg.asset(
        key=VIDEO_PREVIEW,
        partitions_def=videos_partitions,
        group_name=VIDEO_GROUP,
        kinds={"parquet", "jpeg"},
        deps=[FRAME_PREDICTIONS],
        description=described(
            "What the video shows: a contact sheet of annotated frames, an activity chart, and the `tracks` "
            "table (one row per tracked object, with a snapshot).",
            METADATA,
        ),
    )
    def video_preview(
        context: dg.AssetExecutionContext, raw_video: VideoProbe, backend: BackendSwitch, previews: PreviewStore
    ) -> dg.MaterializeResult:
        started = time.monotonic()
        from video_assets.previews.sources import video_file_pictures

        predictions = previews.predictions()
        try:
            tables = VideoTables.read(predictions, raw_video.video_id)
            geometry, note = geometry_for(tables.workflow_version, *_configured_workflow(backend))
            result = build_preview(
                tables,
                video_file_pictures(predictions, raw_video.video_id, raw_video.path),
                geometry,
                predictions,
                previews.previews(),
                video_time,
            )
        except FileNotFoundError as exc:
            raise as_failure(
                VideoError(
                    f"The predictions of {raw_video.video_id} are missing ({exc.filename}): materialize frame_predictions first."
                )
            ) from exc
        context.log.info(f"{raw_video.video_id}: {len(result.tracks)} tracks, preview made in {result.timings_s}")
        return dg.MaterializeResult(
            metadata=preview_metadata(result, previews, note, time.monotonic() - started, video_time)
        )

    return video_preview


def build_camera_preview(start: date) -> dg.AssetsDefinition:
    @dg.asset(
        key=CAMERA_PREVIEW,
        partitions_def=camera_partitions(start),
        group_name=CAMERA_GROUP,
        kinds={"parquet", "jpeg"},
        deps=[CAMERA_WINDOW],
        description=described(
            "What the camera saw in the hour: a contact sheet of the thumbnails its worker kept, an activity chart, "
            "and the `tracks` table (one row per tracked object, with the crop the worker kept).",
            METADATA,
        ),
    )
    def camera_preview(
        context: dg.AssetExecutionContext, cameras: CameraStore, previews: PreviewStore
    ) -> dg.MaterializeResult:
        started = time.monotonic()
        name, hour = context.partition_key.keys_by_dimension["camera"], context.partition_time_window.start
        video_id = camera_video_id(name, hour)
        predictions = previews.predictions()
        try:
            tables = VideoTables.read(predictions, video_id, hour_start=hour)
        except FileNotFoundError as exc:
            raise as_failure(
                VideoError(
                    f"Camera hour {video_id} is not published ({exc.filename}): materialize camera_window first."
                )
            ) from exc
        from video_assets.previews.sources import CameraThumbnails

        geometry, note = geometry_for(tables.workflow_version, *_camera_workflow(cameras, name, context.log))
        result = build_preview(
            tables,
            CameraThumbnails(cameras.data(), cameras.segments(name, hour)),
            geometry,
            predictions,
            previews.previews(),
            camera_time(hour),
        )
        return dg.MaterializeResult(
            metadata=preview_metadata(result, previews, note, time.monotonic() - started, camera_time(hour))
        )

    return camera_preview


def _configured_workflow(backend: BackendSwitch) -> tuple[dict[str, Any] | None, str | None, dict[str, Any]]:
    """The inline workflow spec the backend runs, its version and parameters; (None, None, {}) for a saved one."""
    return _inline(SelfHostedBackend.from_config(backend))  # type: ignore[arg-type]  # Backend has the workflow fields


def _camera_workflow(
    cameras: CameraStore, name: str, log: Any
) -> tuple[dict[str, Any] | None, str | None, dict[str, Any]]:
    try:
        camera = cameras.config().get(name)
    except CameraConfigError as exc:  # removed from the file: the hour is still shown, without lines and zones
        log.warning(str(exc))
        return None, None, {}
    return _inline(
        SelfHostedBackend(
            workflow_file=camera.workflow_file,
            workspace=camera.workspace,
            workflow_id=camera.workflow_id,
            workflow_parameters=camera.workflow_parameters,
        )
    )


def _inline(workflow: SelfHostedBackend) -> tuple[dict[str, Any] | None, str | None, dict[str, Any]]:
    if workflow.uses_saved_workflow:
        return None, None, {}
    spec = workflow.load_spec()
    return spec, "inline:" + spec_hash(spec), dict(workflow.workflow_parameters)


def preview_metadata(
    result: PreviewResult, previews: PreviewStore, geometry_note: str, elapsed_s: float, time_label: Any
) -> dict[str, Any]:
    zone_entries = sum(bool(t["zones"]) for t in result.tracks)
    return {
        "dagster/row_count": len(result.tracks),
        "contact_sheet": previews.image(
            result.sheet, f"contact sheet: frames {', '.join(map(str, result.sheet_frames))}"
        ),
        "activity": previews.image(result.chart, "objects in view by class, and line crossings"),
        "top_tracks": dg.MetadataValue.md(top_tracks_markdown(result.tracks, previews, time_label)),
        "tracks": len(result.tracks),
        "snapshots": result.snapshots,
        "line_crossings": result.crossings,
        "zone_entries": zone_entries,
        "geometry": geometry_note,
        "preview_kb": round(result.preview_bytes / 1000, 1),
        "preview_s": round(elapsed_s, 2),
        "preview_steps": ", ".join(
            f"{step.removesuffix('_s')} {seconds:.2f} s" for step, seconds in result.timings_s.items()
        ),
        "tracks_file": dg.MetadataValue.path(result.tracks_file),
        "contact_sheet_file": dg.MetadataValue.path(result.sheet),
    }


def top_tracks_markdown(tracks: list[dict[str, Any]], previews: PreviewStore, time_label: Any) -> str:
    """A table of the top tracks with their snapshots, cut to stay short enough to show in place."""
    if not tracks:
        return "No tracked objects."
    ranked = sorted(tracks, key=lambda t: (-len(t["crossings"]), -t["frames_seen"], t["tracker_id"]))
    lines = ["| snapshot | object | seen | events |", "|---|---|---|---|"]
    shown = 0
    for track in ranked[:TOP_TRACKS]:
        image = f"![#{track['tracker_id']}]({previews.url(track['snapshot'])})" if track["snapshot"] else ""
        events = [f"{c['line']} {c['direction']}" for c in track["crossings"]] + [
            f"entered {z['zone']}" for z in track["zones"]
        ]
        row = (
            f"| {image} | #{track['tracker_id']} {track['class_name']} "
            f"| {time_label(track['first_seen_s'])}, {track['duration_s']:.1f} s | {', '.join(events)[:60]} |"
        )
        more = f"\n\n{len(tracks) - shown - 1} more in the tracks table." if len(tracks) > shown + 1 else ""
        if len("\n".join([*lines, row])) + len(more) >= MARKDOWN_INLINE_LIMIT:
            break
        lines.append(row)
        shown += 1
    rest = f"\n\n{len(tracks) - shown} more in the tracks table." if len(tracks) > shown else ""
    return "\n".join(lines) + rest


def camera_time(hour_start: datetime) -> Any:
    return lambda offset_s: f"{hour_start + timedelta(seconds=offset_s):%H:%M:%S} UTC"
