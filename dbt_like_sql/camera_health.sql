-- One row per camera per hour (UTC; video_id names the camera hour): frames processed and dropped,
-- drop rate, effective fps, first and last frame, gaps (count, seconds, longest; a gap counts in the
-- hour it ended) and reconnects.
with segments as (
    select
        video_id,
        camera,
        window_start as hour,
        sum(frames_processed) as frames_processed,
        sum(frames_dropped) as frames_dropped,
        min(first_frame_ts) as first_frame_ts,
        max(last_frame_ts) as last_frame_ts,
        sum(reconnects) as reconnects,
        count(*) as segments
    from {{ source('camera_segments') }}
    group by video_id, camera, window_start
),
gaps as (
    select
        g.video_id,
        count(*) as gaps,
        sum(g.duration_s) as gap_seconds,
        max(g.duration_s) as longest_gap_s,
        -- the part of each gap after the hour's first frame, so fps counts only time the camera delivered
        sum(greatest(0, epoch(g.gap_end) - epoch(greatest(g.gap_start, s.first_frame_ts)))) as silent_s
    from {{ source('camera_gaps') }} as g
    join segments as s using (video_id)
    group by g.video_id
)
select
    s.camera,
    s.hour,
    s.video_id,
    s.frames_processed,
    s.frames_dropped,
    round(100.0 * s.frames_dropped / nullif(s.frames_processed + s.frames_dropped, 0), 2) as dropped_pct,
    round(
        s.frames_processed
        / nullif(epoch(s.last_frame_ts) - epoch(s.first_frame_ts) - coalesce(g.silent_s, 0), 0),
        2
    ) as processed_fps,
    s.first_frame_ts,
    s.last_frame_ts,
    coalesce(g.gaps, 0) as gaps,
    round(coalesce(g.gap_seconds, 0), 3) as gap_seconds,
    round(coalesce(g.longest_gap_s, 0), 3) as longest_gap_s,
    s.reconnects,
    s.segments
from segments as s
left join gaps as g using (video_id)
order by s.hour desc, s.camera
