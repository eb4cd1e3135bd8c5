-- Detections per class per minute of video time (minute 0 = the first 60 s of each video),
-- with the frames that showed the class and the distinct tracks.
with counted as (  -- videos whose every frame counted its boxes per class when it was written (class_counts)
    select video_id from {{ source('frames') }} group by video_id having count(class_counts) = count(*)
),
class_frames as (  -- one row per frame and class, with its boxes: as counted when the frame was written...
    select video_id, source, frame_idx, time_offset_s, c.class_name, c.boxes
    from {{ source('frames') }}, unnest(class_counts) as t(c)
    where video_id in (select video_id from counted)
    union all  -- ...or counted here, for older files (grouping every box by frame costs a second at 10 M boxes)
    select video_id, source, frame_idx, time_offset_s, class_name, count(*)
    from {{ source('predictions') }}
    where video_id not in (select video_id from counted)
    group by all
),
per_class as (
    select
        video_id,
        source,
        class_name,
        cast(floor(time_offset_s / 60) as integer) as video_minute,
        sum(boxes)::bigint as detections,
        count(*) as frames_with_class
    from class_frames
    group by all
),
per_track as (  -- grouped by track first: cheaper than count(distinct) over every box
    select video_id, class_name, cast(floor(time_offset_s / 60) as integer) as video_minute, tracker_id
    from {{ source('predictions') }}
    group by all
)
select p.*, coalesce(t.tracks, 0) as tracks
from per_class as p
left join (select video_id, class_name, video_minute, count(tracker_id) as tracks from per_track group by all) as t
    using (video_id, class_name, video_minute)
order by video_id, class_name, video_minute
