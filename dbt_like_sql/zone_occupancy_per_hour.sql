-- Zone occupancy per hour (UTC), source and zone, from the workflow's per-frame zone counts:
-- scalar outputs named zone* or *occupancy* (the default workflow's zone_occupancy).
-- occupied_s is video time with at least one object in the zone.
with readings as (
    select
        video_id,
        source,
        frame_ts,
        o.output.key as zone,
        try_cast(o.output.value as double) as occupancy
    -- each frame's outputs parsed once, as (name, value as text) pairs
    from {{ source('frames') }}, unnest(map_entries(json_transform(outputs, '"MAP(VARCHAR, VARCHAR)"'))) as o(output)
    where o.output.key like 'zone%' or o.output.key like '%occupancy%'
),
timed as (
    select r.*, 1.0 / v.fps as frame_s
    from readings as r
    join {{ source('videos') }} as v using (video_id)
)
select
    source,
    -- time_bucket: the UTC hour, as date_trunc gives it in UTC, but 4x cheaper on TIMESTAMPTZ
    time_bucket(interval 1 hour, frame_ts) as hour_utc,
    zone,
    avg(occupancy) as mean_occupancy,
    max(occupancy) as max_occupancy,
    sum(case when occupancy > 0 then frame_s else 0 end) as occupied_s,
    count(*) as frames
from timed
group by all
order by source, hour_utc, zone
