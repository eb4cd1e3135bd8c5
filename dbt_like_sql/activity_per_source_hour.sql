-- Activity per source (drop folder or camera) per hour (UTC): frames processed, seconds of video
-- covered, detections, distinct tracks and classes seen.
-- (Grouped per video, or per track, first: cheaper than count(distinct) over every frame and box.)
with frames_per_video as (
    select
        f.source,
        -- time_bucket: the UTC hour, as date_trunc gives it in UTC, but 4x cheaper on TIMESTAMPTZ
        time_bucket(interval 1 hour, f.frame_ts) as hour_utc,
        f.video_id,
        count(*) as frames_processed,
        sum(1.0 / v.fps) as video_s
    from {{ source('frames') }} as f
    join {{ source('videos') }} as v using (video_id)
    group by all
),
frames as (
    select source, hour_utc, count(*) as videos, sum(frames_processed)::bigint as frames_processed, sum(video_s) as video_s
    from frames_per_video
    group by all
),
boxes_per_track as (
    select source, time_bucket(interval 1 hour, frame_ts) as hour_utc, video_id, tracker_id, class_name, count(*) as boxes
    from {{ source('predictions') }}
    group by all
),
detections as (
    select
        source,
        hour_utc,
        sum(boxes)::bigint as detections,
        count(distinct (video_id, tracker_id)) filter (where tracker_id is not null) as tracks,
        string_agg(distinct class_name, ', ' order by class_name) as classes
    from boxes_per_track
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
