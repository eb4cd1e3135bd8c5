-- Activity per source (drop folder or camera) per hour (UTC): frames processed, seconds of video
-- covered, detections, distinct tracks and classes seen.
with frames as (
    select
        f.source,
        date_trunc('hour', f.frame_ts) as hour_utc,
        count(*) as frames_processed,
        sum(1.0 / v.fps) as video_s,
        count(distinct f.video_id) as videos
    from {{ source('frames') }} as f
    join {{ source('videos') }} as v using (video_id)
    group by all
),
detections as (
    select
        source,
        date_trunc('hour', frame_ts) as hour_utc,
        count(*) as detections,
        count(distinct video_id || '/' || tracker_id) as tracks,
        string_agg(distinct class_name, ', ' order by class_name) as classes
    from {{ source('predictions') }}
    group by all
)
select
    f.source,
    f.hour_utc,
    f.videos,
    f.frames_processed,
    f.video_s,
    coalesce(d.detections, 0) as detections,
    coalesce(d.tracks, 0) as tracks,
    coalesce(d.classes, '') as classes
from frames as f
left join detections as d using (source, hour_utc)
order by f.source, f.hour_utc
