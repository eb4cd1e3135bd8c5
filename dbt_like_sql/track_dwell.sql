-- How long each tracked object stayed in view: first and last sighting (frame, video time, UTC),
-- frames seen, and dwell_s = last_seen_s - first_seen_s + one frame. Untracked boxes are left out.
-- class_name is the class the track was seen as most often (ties: the first by name).
with per_class as (  -- one pass over the boxes: per track and class, then per track
    select
        video_id,
        source,
        tracker_id,
        class_name,
        min(frame_idx) as first_frame,
        max(frame_idx) as last_frame,
        min(time_offset_s) as first_seen_s,
        max(time_offset_s) as last_seen_s,
        min(frame_ts) as first_seen_ts,
        max(frame_ts) as last_seen_ts,
        count(*) as boxes
    from {{ source('predictions') }}
    where tracker_id is not null
    group by all
),
tracks as (
    select
        video_id,
        source,
        tracker_id,
        arg_min(class_name, (-boxes, class_name)) as class_name,
        min(first_frame) as first_frame,
        max(last_frame) as last_frame,
        min(first_seen_s) as first_seen_s,
        max(last_seen_s) as last_seen_s,
        min(first_seen_ts) as first_seen_ts,
        max(last_seen_ts) as last_seen_ts
    from per_class
    group by video_id, source, tracker_id
),
counted as (  -- videos whose every frame listed its tracks when it was written (tracker_ids)
    select video_id from {{ source('frames') }} group by video_id having count(tracker_ids) = count(*)
),
frames_seen as (  -- from the tracks each frame listed...
    select video_id, t.tracker_id, count(*) as frames_seen
    from {{ source('frames') }}, unnest(tracker_ids) as t(tracker_id)
    where video_id in (select video_id from counted)
    group by all
    union all  -- ...or from the boxes, for older files (count(distinct) costs a second at 10 M boxes)
    select video_id, tracker_id, count(distinct frame_idx)
    from {{ source('predictions') }}
    where tracker_id is not null and video_id not in (select video_id from counted)
    group by all
)
select
    t.video_id,
    t.source,
    t.tracker_id,
    t.class_name,
    t.first_frame,
    t.last_frame,
    t.first_seen_s,
    t.last_seen_s,
    t.first_seen_ts,
    t.last_seen_ts,
    coalesce(f.frames_seen, 0) as frames_seen,
    t.last_seen_s - t.first_seen_s + 1.0 / v.fps as dwell_s
from tracks as t
left join frames_seen as f using (video_id, tracker_id)
join {{ source('videos') }} as v using (video_id)
order by video_id, tracker_id
