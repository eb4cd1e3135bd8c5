-- One row per event of a tracked object, like a camera system's event list: it appeared, crossed a
-- workflow line (in or out) or entered a workflow zone; with when (UTC), where (video or camera hour),
-- what it was, how long it stayed and its snapshot (a JPEG of it at its best frame). From the tracks
-- table the preview assets write.
with tracks as (
    select * from {{ source('tracks') }}
),
crossings as (
    select video_id, source, tracker_id, class_name, duration_s, max_confidence, snapshot, unnest(crossings) as c
    from tracks
),
zones as (
    select video_id, source, tracker_id, class_name, duration_s, max_confidence, snapshot, unnest(zones) as z
    from tracks
)
select first_ts as event_ts, 'appeared' as event, null::varchar as line_or_zone, first_frame as frame_idx,
       video_id, source, tracker_id, class_name, duration_s, max_confidence, snapshot
from tracks
union all
select c.ts, 'crossed_' || c.direction, c.line, c.frame_idx,
       video_id, source, tracker_id, class_name, duration_s, max_confidence, snapshot
from crossings
union all
select z.entered_ts, 'entered_zone', z.zone, z.entered_frame,
       video_id, source, tracker_id, class_name, duration_s, max_confidence, snapshot
from zones
order by event_ts, video_id, tracker_id, event
