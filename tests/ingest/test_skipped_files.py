"""Files the drop-folder sensor will not run are findable outside its tick log: observations of raw_video."""

import dagster as dg

from video_assets.ingest.sensor import SENSOR_NAME


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources) as context:
        result = defs.get_sensor_def(SENSOR_NAME)(context)
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    for event in result.asset_events:  # what the daemon does with them
        instance.report_runless_asset_event(event)
    return result


def test_duplicates_and_non_videos_are_observed_on_raw_video(settings, defs, instance, drop_sample) -> None:
    drop_sample("one_runner.mp4", as_name="a.mp4")
    drop_sample("one_runner.mp4", as_name="copy of a.mp4")
    (settings.inbox / "notes.txt").write_text("not a video")
    result = _tick(defs, instance, None)
    result = _tick(defs, instance, result.cursor)
    [key] = instance.get_dynamic_partitions("videos")
    observed = instance.fetch_observations(dg.AssetKey("raw_video"), limit=10).records
    by_reason = {r.asset_observation.metadata["skipped_because"].value: r.asset_observation for r in observed}
    assert set(by_reason) == {"duplicate", "not_video"}
    duplicate = by_reason["duplicate"]
    assert duplicate.partition == key and "same content as video " + key in duplicate.description
    assert duplicate.metadata["skipped_file"].value == str(settings.inbox / "copy of a.mp4")
    assert by_reason["not_video"].partition is None and "notes.txt" in by_reason["not_video"].description
    # Decided once: a later tick records nothing more.
    assert _tick(defs, instance, result.cursor).asset_events == []
