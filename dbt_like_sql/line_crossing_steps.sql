-- Line crossings per frame and counter, from the workflow's cumulative line counters: scalar outputs
-- named *count_in / *count_out (line_counter's count_in and count_out). A frame's crossings are its total
-- minus the previous frame's. Counters restart at 0 for every video; a camera's run on across its hours
-- (video_id <camera>@<hour>) and restart with its worker (a total below the previous one: the crossings
-- are the total). The writers count them with each frame (frames.line_counts); for frames written before
-- that column existed they are computed here, the same way, from the outputs JSON.
-- A view, not incremental: the Vision Events sink and line_crossings_per_hour (incremental) read it.
with counted as (
    select video_id, source, frame_idx, frame_ts, c.counter, c.total, c.crossings
    from {{ source('frames') }}, unnest(line_counts) as t(c)
),
older_counters as (
    select
        video_id,
        source,
        frame_idx,
        frame_ts,
        o.output.key as counter,
        try_cast(o.output.value as bigint) as total,
        case when video_id like '%@%' then source else video_id end as counter_run
    -- each frame's outputs parsed once, as (name, value as text) pairs
    from {{ source('frames') }}, unnest(map_entries(json_transform(outputs, '"MAP(VARCHAR, VARCHAR)"'))) as o(output)
    where line_counts is null and (ends_with(o.output.key, 'count_in') or ends_with(o.output.key, 'count_out'))
),
older_deltas as (
    select
        *,
        total - coalesce(lag(total) over (partition by counter_run, counter order by frame_ts, frame_idx), 0) as delta
    from older_counters
)
select * from counted
union all
select video_id, source, frame_idx, frame_ts, counter, total, case when delta < 0 then total else delta end
from older_deltas
