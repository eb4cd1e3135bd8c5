-- Detections per class per wall-clock minute (UTC) and source, across every video and camera;
-- tracks are counted per video (a tracker id is only unique within its video).
select
    source,
    class_name,
    date_trunc('minute', frame_ts) as minute_utc,
    count(*) as detections,
    count(distinct video_id) as videos,
    count(distinct video_id || '/' || tracker_id) as tracks
from {{ source('predictions') }}
group by all
order by source, class_name, minute_utc
