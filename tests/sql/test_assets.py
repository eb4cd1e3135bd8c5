"""One asset per model, its data tests as checks, rebuilt by automation when predictions or camera hours land."""

import dagster as dg


def test_every_model_and_check_is_an_asset(settings, defs) -> None:
    graph = defs.resolve_asset_graph()
    models = sorted(p.stem for p in settings.sql_dir.glob("*.sql"))
    assert len(models) >= 7
    for name in models:
        node = graph.get(dg.AssetKey(name))
        # a model that only refs other models reads the predictions through them (camera_health: the camera's)
        upstream = graph.get_ancestor_asset_keys(node.key)
        assert node.group_name == "sql" and {dg.AssetKey("frame_predictions"), dg.AssetKey("camera_window")} & upstream
        assert node.automation_condition is not None
    assert graph.get(dg.AssetKey("line_crossings_per_hour")).parent_keys == {dg.AssetKey("line_crossing_steps")}
    assert graph.get(dg.AssetKey("object_events")).parent_keys == {dg.AssetKey("video_preview"), dg.AssetKey("camera_preview")}
    assert graph.get(dg.AssetKey("camera_health")).parent_keys == {dg.AssetKey("camera_window")}
    checks = {key.name for key in graph.asset_check_keys if key.asset_key == dg.AssetKey("video_summary")}
    assert {"unique_video_id", "detections_match_frames", "row_count_min"} <= checks


def test_models_rebuild_on_their_own_when_predictions_land(settings, defs, instance, write_video, build_sql) -> None:
    write_video("good-000000000001", frames=5, detections_on=[1])
    instance.add_dynamic_partitions("videos", ["good-000000000001"])
    # what reads the video predictions (object_events waits for the previews; camera_health reads cameras only)
    sql_keys = {dg.AssetKey(p.stem) for p in settings.sql_dir.glob("*.sql")} - {dg.AssetKey("object_events"), dg.AssetKey("camera_health")}

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
    assert build_sql(defs).success
    quiet, cursor = requested(cursor)
    assert quiet == set()  # handled: no rebuild without new data
    predictions_land()
    again, _ = requested(cursor)
    assert again == sql_keys


def test_a_published_camera_hour_makes_the_sql_models_rebuild_on_their_own(settings, defs, instance) -> None:
    sql_keys = {dg.AssetKey(p.stem) for p in settings.sql_dir.glob("*.sql")} - {dg.AssetKey("object_events")}
    instance.add_dynamic_partitions("cameras", ["gate"])

    def requested(cursor):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        return {key for key in sql_keys if result.get_num_requested(key)}, result.cursor

    nothing, cursor = requested(None)
    assert nothing == set()
    partition = dg.MultiPartitionKey({"camera": "gate", "hour": "2026-11-26-19:00"})
    instance.report_runless_asset_event(dg.AssetMaterialization("camera_window", partition=partition))
    rebuilt, _ = requested(cursor)
    assert rebuilt == sql_keys
