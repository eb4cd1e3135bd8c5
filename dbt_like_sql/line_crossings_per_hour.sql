-- Line crossings per hour (UTC), source and counter: the per-frame crossings of line_crossing_steps
-- (cumulative *count_in / *count_out outputs; a camera's counters run on across its hours).
with per_video as (  -- summed per video first: cheaper than count(distinct video_id) over every frame
    -- time_bucket: the UTC hour, as date_trunc gives it in UTC, but 4x cheaper on TIMESTAMPTZ
    select source, time_bucket(interval 1 hour, frame_ts) as hour_utc, counter, video_id, sum(crossings) as crossings
    from {{ ref('line_crossing_steps') }}
    group by all
)
select source, hour_utc, counter, sum(crossings) as crossings, count(*) as videos
from per_video
group by all
order by source, hour_utc, counter
