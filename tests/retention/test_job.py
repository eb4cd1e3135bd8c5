"""The `retention` job as the schedule runs it: a dry run lists, a run removes, the metadata is the report."""

import dataclasses
from datetime import UTC, datetime, timedelta

import dagster as dg
import yaml

from video_assets.definitions import build_definitions
from video_assets.retention.job import JOB_NAME, SCHEDULE_NAME
from video_assets.runtime.instance import write_instance_yaml
from video_assets.settings import Keep, RetentionSettings

OLD_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=5)


def run_job(defs, instance, dry_run: bool) -> tuple[dg.ExecuteInProcessResult, dict]:
    config = {"ops": {"apply_retention": {"config": {"dry_run": dry_run}}}}
    result = defs.get_job_def(JOB_NAME).execute_in_process(instance=instance, run_config=config, raise_on_error=False)
    events = [e for e in result.all_events if e.is_successful_output or e.is_step_failure]
    [event] = events
    data = event.step_output_data.metadata if event.is_successful_output else event.step_failure_data.user_failure_data.metadata
    return result, {k: getattr(v, "value", v) for k, v in data.items()}


def test_dry_run_then_run_report_what_goes_as_metadata(settings, instance, record_hour, age) -> None:
    hour = record_hour("lobby", OLD_HOUR)
    process_log = settings.logs_dir / "process-20260101-000000.log"
    process_log.parent.mkdir(parents=True)
    process_log.write_text("x" * 2048)
    age(process_log, 40)
    defs = build_definitions(settings)  # the defaults: segments 2 days, logs 14 days
    assert defs.get_schedule_def(SCHEDULE_NAME).cron_schedule == settings.retention.cron

    dry, report = run_job(defs, instance, dry_run=True)
    assert dry.success and report["dry_run"] is True
    assert (report["segments_items"], report["logs_items"], report["runs_items"]) == (1, 1, 0)
    assert f"streams/lobby/{OLD_HOUR:%Y-%m-%dT%H}" in report["would_remove"] and "process-20260101-000000.log" in report["would_remove"]
    assert hour.is_dir() and process_log.exists()

    done, report = run_job(defs, instance, dry_run=False)
    assert done.success and report["dry_run"] is False and report["errors"] == 0
    assert report["freed_mb"] == round(report["segments_mb"] + report["logs_mb"], 3) > 0
    assert f"streams/lobby/{OLD_HOUR:%Y-%m-%dT%H}" in report["removed"]
    assert not hour.exists() and not process_log.exists()


def test_what_cannot_be_removed_fails_the_run_after_removing_the_rest(settings, instance, record_hour) -> None:
    blocked = record_hour("lobby", OLD_HOUR)
    removable = record_hour("dock", OLD_HOUR)
    in_the_way = blocked.with_name(f".{blocked.name}.deleting.tmp")  # left by an earlier interrupted removal
    (in_the_way / "leftover").mkdir(parents=True)
    result, report = run_job(build_definitions(settings), instance, dry_run=False)
    assert not result.success and report["errors"] == 1 and report["segments_items"] == 1
    assert f"delete streams/lobby/{OLD_HOUR:%Y-%m-%dT%H}" in report["error_list"]
    assert blocked.is_dir() and not removable.exists()


def test_tick_retention_follows_the_runs_setting_and_dagster_accepts_it(settings) -> None:
    settings = dataclasses.replace(settings, retention=RetentionSettings(runs=Keep(days=10)))
    settings.dagster_home.mkdir(parents=True)
    path = write_instance_yaml(settings)
    retention = yaml.safe_load(path.read_text())["retention"]
    assert retention["schedule"] == {"purge_after_days": 10}
    assert retention["sensor"]["purge_after_days"] == {"skipped": 1, "success": 10, "failure": 10, "started": 10}
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:  # validated against Dagster's schema
        assert instance.get_ref().settings["retention"] == retention
