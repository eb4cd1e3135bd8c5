-- How long each tracked object stayed in view: first and last sighting (frame, video time, UTC),
-- frames seen, and dwell_s = last_seen_s - first_seen_s + one frame. Untracked boxes are left out.
-- class_name is the class the track was seen as most often (ties: the first by name).
with tracks as (
    select
        video_id,
        source,
        tracker_id,
        min(frame_idx) as first_frame,
        max(frame_idx) as last_frame,
        min(time_offset_s) as first_seen_s,
        max(time_offset_s) as last_seen_s,
        min(frame_ts) as first_seen_ts,
        max(frame_ts) as last_seen_ts,
        count(distinct frame_idx) as frames_seen
    from {{ source('predictions') }}
    where tracker_id is not null
    group by video_id, source, tracker_id
),
classes as (
    select video_id, tracker_id, arg_min(class_name, (-boxes, class_name)) as class_name
    from (
        select video_id, tracker_id, class_name, count(*) as boxes
        from {{ source('predictions') }}
        where tracker_id is not null
        group by all
    )
    group by all
)
select
    t.video_id,
    t.source,
    t.tracker_id,
    c.class_name,
    t.first_frame,
    t.last_frame,
    t.first_seen_s,
    t.last_seen_s,
    t.first_seen_ts,
    t.last_seen_ts,
    t.frames_seen,
    t.last_seen_s - t.first_seen_s + 1.0 / v.fps as dwell_s
from tracks as t
join classes as c using (video_id, tracker_id)
join {{ source('videos') }} as v using (video_id)
order by video_id, tracker_id
