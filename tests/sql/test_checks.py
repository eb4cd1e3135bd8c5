"""Data tests as asset checks, one writer at a time, readers never blocked, automation."""

import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from video_assets.definitions import build_definitions
from video_assets.predictions.schema import DETECTIONS, FRAMES, VIDEOS
from video_assets.settings import Settings
from video_assets.sql.checks import CheckDefinitionError
from video_assets.sql.models import SqlModelError, load_models

TS = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def write_table(settings: Settings, table: str, schema: pa.Schema, rows: list[dict]) -> None:
    video_id = rows[0]["video_id"]
    path = settings.predictions_dir / table / f"video_id={video_id}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def write_video(
    settings: Settings, video_id: str, frames: int, detections_on: list[int], frames_table: bool = True, ts: datetime = TS
) -> None:
    """Hand-made tables for one video (its frames all stamped `ts`), to inject exactly the data a test needs."""
    common = {"video_id": video_id, "source": video_id.split("@")[0] if "@" in video_id else "inbox",
              "workflow_version": "inline:x", "backend": "self_hosted"}

    def at(i: int) -> dict:
        return {**common, "frame_idx": i, "time_offset_s": i / 10, "frame_ts": ts}
    write_table(settings, "detections", DETECTIONS, [
        {**at(i), "class_name": "person", "class_id": 0, "confidence": 0.9, "x": 1.0, "y": 1.0,
         "width": 1.0, "height": 1.0, "tracker_id": 1} for i in detections_on
    ])
    if frames_table:
        write_table(settings, "frames", FRAMES, [
            {**at(i), "detection_count": detections_on.count(i), "outputs": "{}"} for i in range(frames)
        ])
    write_table(settings, "videos", VIDEOS, [{
        **common, "file": f"{video_id}.mp4", "sha256": "0" * 64, "bytes": 1, "duration_s": frames / 10, "fps": 10.0,
        "width": 64, "height": 64, "codec": "h264", "recorded_at": ts, "frames_expected": frames,
        "frames_processed": frames, "processed_at": ts,
    }])


def build(defs: dg.Definitions, instance: dg.DagsterInstance, *names: str) -> dg.ExecuteInProcessResult:
    selection = dg.AssetSelection.assets(*names) if names else dg.AssetSelection.groups("sql")
    return dg.materialize(list(defs.assets), selection=selection, instance=instance, resources=defs.resources, raise_on_error=False)


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, int]]:
    return {c.check_name: (c.passed, c.metadata["offending_rows"].value) for c in result.get_asset_check_evaluations()}


def test_a_detection_without_its_frame_fails_the_check_and_the_run(settings, defs, instance) -> None:
    write_video(settings, "good-000000000001", frames=5, detections_on=[1, 2])
    write_video(settings, "orphan-000000000002", frames=3, detections_on=[7, 8, 8])  # frames 7, 8 do not exist
    result = build(defs, instance, "video_summary")
    assert not result.success  # blocking check failed
    checks = check_results(result)
    assert checks["every_detection_has_its_frame"] == (False, 3)
    assert checks["unique_video_id"] == (True, 0) and checks["row_count_min"] == (True, 0)


def test_missing_frames_file_and_wrong_counts_are_caught(settings, defs, instance) -> None:
    write_video(settings, "good-000000000001", frames=5, detections_on=[1, 1, 2])
    write_video(settings, "noframes-000000000002", frames=5, detections_on=[0], frames_table=False)
    bad = settings.predictions_dir / "frames" / "video_id=good-000000000001" / "part-0.parquet"
    rows = pq.read_table(bad).to_pylist()
    rows[1]["detection_count"] = 5  # frame 1 claims 5 boxes, has 2
    pq.write_table(pa.Table.from_pylist(rows, schema=FRAMES), bad)
    checks = check_results(build(defs, instance, "video_summary"))
    assert checks["detection_counts_match_frames"] == (False, 1)
    assert checks["every_detection_has_its_frame"] == (False, 1)


def test_empty_warehouse_fails_row_count(settings, defs, instance) -> None:
    checks = check_results(build(defs, instance, "video_summary"))
    assert checks["row_count_min"] == (False, 1)


def test_a_failed_blocking_check_stops_downstream_models(tmp_path, instance) -> None:
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "upstream.sql").write_text("-- Two rows with the same id.\nselect 1 as id union all select 1")
    (sql_dir / "upstream.yml").write_text("checks:\n  unique: [id]\n  not_null: [id]\n")
    (sql_dir / "downstream.sql").write_text("select count(*) as n from {{ ref('upstream') }}")
    defs = build_definitions(Settings(home=tmp_path / "home", sql_dir=sql_dir))
    result = build(defs, instance)
    assert check_results(result) == {"unique_id": (False, 1), "not_null_id": (True, 0)}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"upstream"}  # downstream was blocked
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("upstream") in graph.get(dg.AssetKey("downstream")).parent_keys


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.sql": "select * from {{ ref('missing') }}"}, r"ref\(\) to unknown model"),
        ({"a.sql": "select * from {{ source('nope') }}"}, "unknown source"),
        ({"frames.sql": "select 1"}, "name of a source view"),
        ({"bad-name.sql": "select 1"}, "must be SQL identifiers"),
        ({"a.sql": "select 1", "a.yml": "checks:\n  nonsense: [x]\n"}, "unknown check kind"),
        ({"a.sql": "select 1", "a.yml": "checks: [unclosed"}, "not valid YAML"),
    ],
)
def test_malformed_models_name_the_file(tmp_path, files, message) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises((SqlModelError, CheckDefinitionError), match=message) as raised:
        load_models(tmp_path)
    assert str(tmp_path) in str(raised.value)


def test_parallel_rebuilds_and_queries_never_hit_a_lock(settings, defs, instance) -> None:
    write_video(settings, "good-000000000001", frames=50, detections_on=list(range(0, 50, 2)))
    assert build(defs, instance).success  # the warehouse exists; now rebuild it while it is read
    script = textwrap.dedent(
        f"""
        import sys, dagster as dg
        from video_assets.definitions import build_definitions
        from video_assets.settings import Settings
        defs = build_definitions(Settings(home=__import__("pathlib").Path({str(settings.home)!r})))
        if sys.argv[1] == "write":
            with dg.DagsterInstance.ephemeral() as instance:
                for _ in range(3):
                    result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.groups("sql"),
                                            instance=instance, resources=defs.resources)
                    assert result.success
        else:
            import time
            warehouse = defs.resources["warehouse"]
            deadline, queries = time.time() + 600, 0
            while time.time() < deadline:
                with warehouse.read() as conn:
                    assert conn.execute("select frames_processed from video_summary").fetchall() == [(50,)]
                queries += 1
                if queries >= 200:
                    break
            print(queries)
        """
    )
    roles = ("write", "write", "write", "read")
    logs = [settings.home / f"{role}{i}.log" for i, role in enumerate(roles)]
    procs = [
        subprocess.Popen([sys.executable, "-c", script, role], stdout=open(log, "w"), stderr=subprocess.STDOUT)
        for role, log in zip(roles, logs)
    ]
    for proc, log in zip(procs, logs):
        assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
        assert "could not set lock" not in log.read_text().lower()
    assert logs[-1].read_text().strip().splitlines()[-1] == "200"


def test_models_rebuild_on_their_own_when_predictions_land(settings, defs, instance) -> None:
    write_video(settings, "good-000000000001", frames=5, detections_on=[1])
    instance.add_dynamic_partitions("videos", ["good-000000000001"])
    sql_keys = {dg.AssetKey(p.stem) for p in settings.sql_dir.glob("*.sql")}

    def predictions_land() -> None:
        instance.report_runless_asset_event(dg.AssetMaterialization("frame_predictions", partition="good-000000000001"))

    def requested(cursor):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        return {key for key in sql_keys if result.get_num_requested(key)}, result.cursor

    nothing, cursor = requested(None)
    assert nothing == set()  # nothing new yet
    predictions_land()
    first, cursor = requested(cursor)
    assert first == sql_keys
    assert build(defs, instance).success
    quiet, cursor = requested(cursor)
    assert quiet == set()  # handled: no rebuild without new data
    predictions_land()
    again, _ = requested(cursor)
    assert again == sql_keys
