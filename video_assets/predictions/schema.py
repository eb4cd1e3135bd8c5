"""The Parquet tables every backend writes, one file per video per table.

- detections: one row per box (centre x, y, width, height in pixels, Roboflow's convention).
- frames: one row per processed frame with its detection count, so "nothing detected" (a frame
  row with detection_count 0) and "not processed" (no frame row) differ.
- videos: one row per video: what was probed and how it was processed.
- pictures: JPEGs kept while the frames went by (previews/kept.py), for the preview: the contact
  sheet's frames (tracker_id NULL) and each track's best sighting; empty when the backend delivers
  no pictures (hosted). Not a SQL table.
- tracks: one row per tracked object (written by the preview assets, after the predictions): when it
  was seen, how surely, which lines it crossed and zones it entered, and a JPEG snapshot of it.

Live cameras write the same three tables (one "video" per camera per hour) plus their health as data:
- camera_segments: one row per committed segment: frames processed and dropped, first and last frame.
- camera_gaps: one row per interval in which the camera delivered no frame (start, end, cause).
"""

from __future__ import annotations

import pyarrow as pa

UTC_TS = pa.timestamp("us", tz="UTC")

_FRAME_COLUMNS = [
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("frame_idx", pa.int64(), nullable=False),
    pa.field("time_offset_s", pa.float64(), nullable=False),
    pa.field("frame_ts", UTC_TS, nullable=False),
]
_LINEAGE_COLUMNS = [
    pa.field("workflow_version", pa.string(), nullable=False),
    pa.field("backend", pa.string(), nullable=False),
]

DETECTIONS = pa.schema(
    [
        *_FRAME_COLUMNS,
        pa.field("class_name", pa.string(), nullable=False),
        pa.field("class_id", pa.int32(), nullable=False),
        pa.field("confidence", pa.float32()),
        pa.field("x", pa.float32(), nullable=False),
        pa.field("y", pa.float32(), nullable=False),
        pa.field("width", pa.float32(), nullable=False),
        pa.field("height", pa.float32(), nullable=False),
        pa.field("tracker_id", pa.int64()),
        *_LINEAGE_COLUMNS,
    ]
)

# One cumulative line counter read on a frame (outputs named *count_in / *count_out): its total and the
# crossings since the previous frame, counted when the frame is written (storage.LineCounters).
LINE_COUNT = pa.struct(
    [
        pa.field("counter", pa.string(), nullable=False),
        pa.field("total", pa.int64()),  # NULL if the output was not a whole number
        pa.field("crossings", pa.int64()),
    ]
)

# The boxes of one class on a frame, counted when the frame is written (storage.frame_tallies).
CLASS_COUNT = pa.struct(
    [pa.field("class_name", pa.string(), nullable=False), pa.field("boxes", pa.int32(), nullable=False)]
)

FRAMES = pa.schema(
    [
        *_FRAME_COLUMNS,
        pa.field("detection_count", pa.int32(), nullable=False),
        pa.field("outputs", pa.string(), nullable=False),  # JSON object of the workflow's scalar outputs
        *_LINEAGE_COLUMNS,
        # Last, and NULL in files written before they existed (the SQL models then compute them from outputs
        # and detections): what the models would otherwise group every box by frame for.
        pa.field("line_counts", pa.list_(LINE_COUNT)),
        pa.field("class_counts", pa.list_(CLASS_COUNT)),  # by class name
        pa.field("tracker_ids", pa.list_(pa.int64())),  # the distinct tracker ids of its boxes, ascending
    ]
)

VIDEOS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("fps", pa.float64(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),  # of the picture the model saw (rotation applied)
        pa.field("height", pa.int32(), nullable=False),
        pa.field("rotation", pa.int32(), nullable=False),  # degrees counterclockwise, from the display matrix
        pa.field("codec", pa.string(), nullable=False),
        pa.field("recorded_at", UTC_TS, nullable=False),
        pa.field("frames_expected", pa.int64(), nullable=False),
        pa.field("frames_processed", pa.int64(), nullable=False),
        pa.field("processed_at", UTC_TS, nullable=False),
        *_LINEAGE_COLUMNS,
    ]
)

TABLES: dict[str, pa.Schema] = {"detections": DETECTIONS, "frames": FRAMES, "videos": VIDEOS}

PICTURES = pa.schema(
    [
        pa.field("frame_idx", pa.int64(), nullable=False),
        pa.field("tracker_id", pa.int64()),  # the track this is a snapshot of; NULL: a contact-sheet frame
        pa.field("jpeg", pa.binary(), nullable=False),
    ]
)

CROSSING = pa.struct(
    [
        pa.field("line", pa.string(), nullable=False),  # the workflow step that counts it
        pa.field("direction", pa.string(), nullable=False),  # in | out, as the line counter counts them
        pa.field("frame_idx", pa.int64(), nullable=False),
        pa.field("ts", UTC_TS, nullable=False),
    ]
)
ZONE_VISIT = pa.struct(
    [
        pa.field("zone", pa.string(), nullable=False),  # the workflow step that watches it
        pa.field("entered_frame", pa.int64(), nullable=False),
        pa.field("entered_ts", UTC_TS, nullable=False),
        pa.field("frames_inside", pa.int64(), nullable=False),
    ]
)

TRACKS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("tracker_id", pa.int64(), nullable=False),
        pa.field("class_name", pa.string(), nullable=False),  # the class it was given most often
        pa.field("first_frame", pa.int64(), nullable=False),
        pa.field("last_frame", pa.int64(), nullable=False),
        pa.field("first_seen_s", pa.float64(), nullable=False),
        pa.field("last_seen_s", pa.float64(), nullable=False),
        pa.field("first_ts", UTC_TS, nullable=False),
        pa.field("last_ts", UTC_TS, nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),  # last - first + one frame
        pa.field("frames_seen", pa.int64(), nullable=False),
        pa.field("max_confidence", pa.float32()),
        pa.field("mean_confidence", pa.float32()),
        pa.field("best_frame", pa.int64(), nullable=False),  # highest confidence, then largest box
        pa.field("best_ts", UTC_TS, nullable=False),
        pa.field("best_x", pa.float32(), nullable=False),
        pa.field("best_y", pa.float32(), nullable=False),
        pa.field("best_width", pa.float32(), nullable=False),
        pa.field("best_height", pa.float32(), nullable=False),
        pa.field("crossings", pa.list_(CROSSING), nullable=False),
        pa.field("zones", pa.list_(ZONE_VISIT), nullable=False),
        pa.field("snapshot", pa.string()),  # JPEG of the object at best_frame, beside the Parquet; NULL if none
        *_LINEAGE_COLUMNS,
    ]
)

DERIVED_TABLES: dict[str, pa.Schema] = {"tracks": TRACKS}  # made from the three above by the preview assets

CAMERA_SEGMENTS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),  # <camera>@<YYYY-MM-DDTHH>
        pa.field("camera", pa.string(), nullable=False),
        pa.field("segment", pa.string(), nullable=False),
        pa.field("window_start", UTC_TS, nullable=False),
        pa.field("opened_at", UTC_TS, nullable=False),
        pa.field("committed_at", UTC_TS, nullable=False),
        pa.field("frame_idx_start", pa.int64(), nullable=False),
        pa.field("frames_processed", pa.int64(), nullable=False),
        pa.field("frames_dropped", pa.int64(), nullable=False),  # received from the camera, not processed
        pa.field("first_frame_ts", UTC_TS),
        pa.field("last_frame_ts", UTC_TS),
        pa.field("reconnects", pa.int32(), nullable=False),
        pa.field("source_fps", pa.float64()),  # as the stream declares it
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        *_LINEAGE_COLUMNS,
    ]
)

CAMERA_GAPS = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),  # the window in which the gap ended
        pa.field("camera", pa.string(), nullable=False),
        pa.field("gap_start", UTC_TS, nullable=False),  # the last frame received before the gap
        pa.field("gap_end", UTC_TS, nullable=False),  # the first frame received after it
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("cause", pa.string(), nullable=False),  # reconnect | stall | worker_restart | disk_guard
        pa.field("reconnect_attempts", pa.int32(), nullable=False),
    ]
)

CAMERA_TABLES: dict[str, pa.Schema] = {"camera_segments": CAMERA_SEGMENTS, "camera_gaps": CAMERA_GAPS}
