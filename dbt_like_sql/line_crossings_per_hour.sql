-- Line crossings per hour (UTC), source and counter, from the workflow's cumulative line counters:
-- scalar outputs named *count_in / *count_out (line_counter's count_in and count_out). Counters
-- restart at 0 for every video, so a frame's crossings are its total minus the previous frame's. A
-- camera's counters run on across its hours (video_id <camera>@<hour>) and restart with its worker.
with counters as (
    select
        video_id,
        source,
        frame_idx,
        frame_ts,
        k.counter,
        try_cast(json_extract_string(outputs, '$."' || k.counter || '"') as bigint) as total,
        case when video_id like '%@%' then source else video_id end as counter_run
    from {{ source('frames') }}, unnest(json_keys(outputs)) as k(counter)
    where k.counter like '%count_in' or k.counter like '%count_out'
),
deltas as (
    select
        *,
        total - coalesce(lag(total) over (partition by counter_run, counter order by frame_ts, frame_idx), 0) as delta
    from counters
),
steps as (
    select *, case when delta < 0 then total else delta end as crossings  -- below the last total: it restarted
    from deltas
)
select
    source,
    date_trunc('hour', frame_ts) as hour_utc,
    counter,
    sum(crossings) as crossings,
    count(distinct video_id) as videos
from steps
group by all
order by source, hour_utc, counter
