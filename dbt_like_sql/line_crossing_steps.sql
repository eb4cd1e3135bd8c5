-- Line crossings per frame and counter, from the workflow's cumulative line counters: scalar outputs
-- named *count_in / *count_out (line_counter's count_in and count_out). Counters restart at 0 for
-- every video, so a frame's crossings are its total minus the previous frame's. A camera's counters
-- run on across its hours (video_id <camera>@<hour>) and restart with its worker (a total below the
-- previous one). A view, not incremental: each step reads the frame before it, across all of a camera's
-- history; line_crossings_per_hour (incremental by hour) and the Vision Events sink both count from it.
with counters as (
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
    where o.output.key like '%count_in' or o.output.key like '%count_out'
),
deltas as (
    select
        *,
        total - coalesce(lag(total) over (partition by counter_run, counter order by frame_ts, frame_idx), 0) as delta
    from counters
)
select
    video_id,
    source,
    frame_idx,
    frame_ts,
    counter,
    total,
    case when delta < 0 then total else delta end as crossings  -- below the last total: it restarted
from deltas
