-- One row per video: frames expected and processed, detections, distinct tracks, classes,
-- duration, fps, resolution, backend and workflow version.
with frame_counts as (
    select video_id, count(*) as frames_processed, sum(detection_count) as detections
    from {{ source('frames') }}
    group by video_id
),
track_counts as (
    select
        video_id,
        count(distinct tracker_id) as tracks,
        string_agg(distinct class_name, ', ' order by class_name) as classes
    from {{ source('predictions') }}
    group by video_id
)
select
    v.video_id,
    v.source,
    v.file,
    v.duration_s,
    v.fps,
    v.width,
    v.height,
    coalesce(v.rotation, 0) as rotation,
    v.frames_expected,
    coalesce(f.frames_processed, 0) as frames_processed,
    coalesce(f.detections, 0) as detections,
    coalesce(t.tracks, 0) as tracks,
    coalesce(t.classes, '') as classes,
    v.backend,
    v.workflow_version,
    v.recorded_at,
    v.processed_at
from {{ source('videos') }} as v
left join frame_counts as f using (video_id)
left join track_counts as t using (video_id)
order by v.video_id
