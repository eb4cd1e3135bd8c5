-- Line crossings per hour (UTC), source and counter: the per-frame crossings of line_crossing_steps
-- (cumulative *count_in / *count_out outputs; a camera's counters run on across its hours).
select
    source,
    date_trunc('hour', frame_ts) as hour_utc,
    counter,
    sum(crossings) as crossings,
    count(distinct video_id) as videos
from {{ ref('line_crossing_steps') }}
group by all
order by source, hour_utc, counter
