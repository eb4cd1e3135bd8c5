-- Detections per class per wall-clock minute (UTC) and source, across every video and camera;
-- tracks are counted per video (a tracker id is only unique within its video).
with per_track as (  -- grouped by track first: cheaper than count(distinct) over every box
    -- time_bucket: the UTC minute, as date_trunc gives it in UTC, but 4x cheaper on TIMESTAMPTZ
    select source, class_name, time_bucket(interval 1 minute, frame_ts) as minute_utc, video_id, tracker_id, count(*) as boxes
    from {{ source('predictions') }}
    group by all
)
select
    source,
    class_name,
    minute_utc,
    sum(boxes)::bigint as detections,
    count(distinct video_id) as videos,
    count(tracker_id) as tracks
from per_track
group by all
order by source, class_name, minute_utc
