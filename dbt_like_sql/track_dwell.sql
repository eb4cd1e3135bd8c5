-- How long each tracked object stayed in view: first and last sighting (frame, video time, UTC),
-- frames seen, and dwell_s = last_seen_s - first_seen_s + one frame. Untracked boxes are left out.
with tracks as (
    select
        video_id,
        source,
        tracker_id,
        mode(class_name) as class_name,
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
)
select
    t.*,
    t.last_seen_s - t.first_seen_s + 1.0 / v.fps as dwell_s
from tracks as t
join {{ source('videos') }} as v using (video_id)
order by video_id, tracker_id
