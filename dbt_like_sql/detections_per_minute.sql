-- Detections per class per minute of video time (minute 0 = the first 60 s of each video),
-- with the frames that showed the class and the distinct tracks.
select
    video_id,
    source,
    class_name,
    cast(floor(time_offset_s / 60) as integer) as video_minute,
    count(*) as detections,
    count(distinct frame_idx) as frames_with_class,
    count(distinct tracker_id) as tracks
from {{ source('predictions') }}
group by all
order by video_id, class_name, video_minute
