"""Data tests as asset checks: offending rows counted, blocking checks stop downstream models."""

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from video_assets.backends.registry import KINDS
from video_assets.definitions import build_definitions
from video_assets.predictions.schema import FRAMES
from video_assets.settings import Settings
from video_assets.sql.checks import CheckDefinitionError
from video_assets.sql.defs import sql_variables
from video_assets.sql.models import load_models, model_named


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, int]]:
    return {c.check_name: (c.passed, c.metadata["offending_rows"].value) for c in result.get_asset_check_evaluations()}


def sql_models(tmp_path, files: dict[str, str]):
    """A folder of SQL models (and their .yml) for definitions of their own."""
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    for name, text in files.items():
        (sql_dir / name).write_text(text)
    return sql_dir


def test_a_detection_without_its_frame_fails_the_check_and_the_run(defs, write_video, build_sql) -> None:
    write_video("good-000000000001", frames=5, detections_on=[1, 2])
    write_video("orphan-000000000002", frames=3, detections_on=[7, 8, 8])  # frames 7, 8 do not exist
    result = build_sql(defs, "video_summary")
    assert not result.success  # blocking check failed
    checks = check_results(result)
    assert checks["detections_match_frames"] == (False, 2)  # frames 7 and 8: boxes, no frame row
    assert checks["unique_video_id"] == (True, 0) and checks["row_count_min"] == (True, 0)


def test_missing_frames_file_and_wrong_counts_are_caught(settings, defs, write_video, build_sql) -> None:
    write_video("good-000000000001", frames=5, detections_on=[1, 1, 2])
    write_video("noframes-000000000002", frames=5, detections_on=[0], frames_table=False)
    bad = settings.predictions_dir / "frames" / "video_id=good-000000000001" / "part-0.parquet"
    rows = pq.read_table(bad).to_pylist()
    rows[1]["detection_count"] = 5  # frame 1 claims 5 boxes, has 2
    pq.write_table(pa.Table.from_pylist(rows, schema=FRAMES), bad)
    result = build_sql(defs, "video_summary")
    checks = check_results(result)
    assert checks["detections_match_frames"] == (False, 2)
    [evaluation] = [c for c in result.get_asset_check_evaluations() if c.check_name == "detections_match_frames"]
    sample = evaluation.metadata["sample"].value
    assert "| good-000000000001 | 1 | 5 | 2 |" in sample  # claims 5 boxes, has 2
    assert "| noframes-000000000002 | 0 |  | 1 |" in sample  # a box on a frame the frames table lacks


def test_a_box_count_moved_between_frames_is_caught(settings, defs, write_video, build_sql) -> None:
    """The video's totals agree (3 boxes, counts summing to 3): only the per-frame comparison tells."""
    write_video("moved-000000000001", frames=4, detections_on=[0, 1, 1])
    bad = settings.predictions_dir / "frames" / "video_id=moved-000000000001" / "part-0.parquet"
    rows = pq.read_table(bad).to_pylist()
    rows[0]["detection_count"], rows[2]["detection_count"] = 0, 1  # frame 0's box counted on frame 2
    pq.write_table(pa.Table.from_pylist(rows, schema=FRAMES), bad)
    result = build_sql(defs, "video_summary")
    assert check_results(result)["detections_match_frames"] == (False, 2)
    [evaluation] = [c for c in result.get_asset_check_evaluations() if c.check_name == "detections_match_frames"]
    assert "| moved-000000000001 | 0 | 0 | 1 |" in evaluation.metadata["sample"].value
    assert "| moved-000000000001 | 2 | 1 | 0 |" in evaluation.metadata["sample"].value


def test_empty_warehouse_fails_row_count(defs, build_sql) -> None:
    checks = check_results(build_sql(defs, "video_summary"))
    assert checks["row_count_min"] == (False, 1)


def test_a_failed_blocking_check_stops_downstream_models(tmp_path, build_sql) -> None:
    sql_dir = sql_models(tmp_path, {
        "upstream.sql": "-- Two rows with the same id.\nselect 1 as id union all select 1",
        "upstream.yml": "checks:\n  unique: [id]\n  not_null: [id]\n",
        "downstream.sql": "select count(*) as n from {{ ref('upstream') }}",
    })
    defs = build_definitions(Settings(home=tmp_path / "home", sql_dir=sql_dir))
    result = build_sql(defs)
    assert check_results(result) == {"unique_id": (False, 1), "not_null": (True, 0)}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"upstream"}  # downstream was blocked
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("upstream") in graph.get(dg.AssetKey("downstream")).parent_keys


def test_not_null_is_one_check_over_its_columns(tmp_path, build_sql) -> None:
    sql_dir = sql_models(tmp_path, {
        "pairs.sql": "select 1 as a, null::int as b union all select null, 2 union all select 3, 4",
        "pairs.yml": "checks:\n  not_null: [a, b]\n",
    })
    result = build_sql(build_definitions(Settings(home=tmp_path / "home", sql_dir=sql_dir)))
    assert check_results(result) == {"not_null": (False, 2)}  # a row with either column NULL
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.description == "never NULL: a, b"
    assert "| 1 |  |" in evaluation.metadata["sample"].value and "|  | 2 |" in evaluation.metadata["sample"].value


def test_a_model_that_fails_stops_only_the_models_reading_it(tmp_path, build_sql) -> None:
    """All models build in one step: a broken one fails the run after the others are published."""
    sql_dir = sql_models(tmp_path, {
        "broken.sql": "select no_such_column from (select 1 as id)",
        "reads_broken.sql": "select count(*) as n from {{ ref('broken') }}",
        "fine.sql": "select 42 as answer",
    })
    settings = Settings(home=tmp_path / "home", sql_dir=sql_dir)
    result = build_sql(build_definitions(settings))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    assert "broken failed" in failure.message and "no_such_column" in failure.message
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {"fine"}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        assert conn.execute("select answer from fine").fetchall() == [(42,)]


def test_the_backend_data_test_accepts_every_registered_kind_and_nothing_else(settings, defs, write_video, build_sql) -> None:
    """video_summary.yml names `{{ var('backend_kinds') }}`: the kinds of the backend registry, not a copied list."""
    summary = model_named(load_models(settings.sql_dir, sql_variables()), "video_summary")
    [accepted] = [c for c in summary.checks if c.name == "accepted_values_backend"]
    assert accepted.description == f"backend is one of {list(KINDS)}"
    for i, kind in enumerate(KINDS):
        write_video(f"by_{kind}-00000000000{i}", frames=2, backend=kind)
    assert check_results(build_sql(defs, "video_summary"))["accepted_values_backend"] == (True, 0)

    write_video("by_cloud-000000000009", frames=2, backend="cloud")
    result = build_sql(defs, "video_summary")
    assert not result.success and check_results(result)["accepted_values_backend"] == (False, 1)
    [evaluation] = [c for c in result.get_asset_check_evaluations() if c.check_name == "accepted_values_backend"]
    assert "| cloud | 1 |" in evaluation.metadata["sample"].value


def test_a_variable_is_resolved_from_what_the_project_passes(tmp_path) -> None:
    (tmp_path / "kinds.sql").write_text("select 'a' as backend")
    (tmp_path / "kinds.yml").write_text("checks:\n  accepted_values:\n    backend: \"{{ var('backend_kinds') }}\"\n")
    [model] = load_models(tmp_path, {"backend_kinds": ["a", "b"]})
    [check] = model.checks
    assert check.description == "backend is one of ['a', 'b']" and "not in ('a', 'b')" in check.sql


def test_an_unknown_variable_names_the_file(tmp_path) -> None:
    (tmp_path / "kinds.sql").write_text("select 'a' as backend")
    (tmp_path / "kinds.yml").write_text("checks:\n  accepted_values:\n    backend: \"{{ var('backend_kind') }}\"\n")
    with pytest.raises(CheckDefinitionError) as raised:
        load_models(tmp_path, sql_variables())
    assert str(raised.value) == f"{tmp_path / 'kinds.yml'}: unknown variable 'backend_kind'; defined: ['backend_kinds']"
