"""Summary events count line crossings exactly as the SQL model does (both read line_crossing_steps)."""

from datetime import datetime, timedelta, timezone

import dagster as dg
import duckdb

from video_assets.definitions import build_definitions
from video_assets.streams.assets import camera_names, camera_partition_key

H18 = datetime(2026, 11, 26, 18, tzinfo=timezone.utc)
H19 = H18 + timedelta(hours=1)


def test_camera_hour_events_count_crossings_like_line_crossings_per_hour(
    events_settings, instance, write_video, sent_events
) -> None:
    """A camera's cumulative counters run on across its hours and restart with its worker: the second hour's
    events must count 2 -> 3 as one crossing (not 3), and a restart (5 -> 0) as none (not -5)."""

    def reading(hour: datetime, minute: int, second: int, count_in: int, count_out: int):
        return hour + timedelta(minutes=minute, seconds=second), {"line_count_in": count_in, "line_count_out": count_out}

    write_video("gate@2026-11-26T18", frames=[
        reading(H18, 58, 10, 0, 0), reading(H18, 58, 40, 1, 0), reading(H18, 59, 20, 2, 1), reading(H18, 59, 50, 3, 1),
    ])
    write_video("gate@2026-11-26T19", frames=[
        reading(H19, 0, 10, 4, 1), reading(H19, 0, 40, 4, 2),  # minute 0: one in, one out
        reading(H19, 1, 5, 5, 2), reading(H19, 1, 30, 0, 0), reading(H19, 1, 50, 1, 0),  # the worker restarted
        reading(H19, 2, 20, 2, 1),  # minute 2: one in, one out
    ])
    defs = build_definitions(events_settings)
    instance.add_dynamic_partitions(camera_names.name, ["gate"])
    for hour in (H18, H19):
        result = dg.materialize([defs.get_assets_def("camera_vision_events")], partition_key=camera_partition_key("gate", hour),
                                instance=instance, resources=defs.resources)
        assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    models = dg.AssetSelection.assets("line_crossing_steps", "line_crossings_per_hour")
    assert dg.materialize(list(defs.assets), selection=models, instance=instance, resources=defs.resources).success

    per_minute = {
        counter: [e["customMetadata"][f"crossings {counter}"] for e in sent_events("gate@2026-11-26T19")]
        for counter in ("line_count_in", "line_count_out")
    }
    assert per_minute == {"line_count_in": [1, 2, 1], "line_count_out": [1, 0, 1]}
    with duckdb.connect(str(events_settings.warehouse_path), read_only=True) as conn:
        hourly = dict(conn.execute(
            "select counter, crossings from line_crossings_per_hour where source = 'gate' and hour_utc = ?", [H19]
        ).fetchall())
    assert {counter: sum(values) for counter, values in per_minute.items()} == hourly == {"line_count_in": 4, "line_count_out": 2}
    first_hour = [e["customMetadata"]["crossings line_count_in"] for e in sent_events("gate@2026-11-26T18")]
    assert first_hour == [1, 2]  # 0 -> 1 at 18:58, 1 -> 2 -> 3 at 18:59
