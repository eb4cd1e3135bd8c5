"""`video-assets process`: settle every file present at start, run what the sensor requests, then SQL."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Callable

import dagster as dg
from dagster._core.events import DagsterEventType

from video_assets.cli.driver import UNFINISHED, DagsterDriver
from video_assets.cli.instance import console_with_quiet_children, prepare_environment
from video_assets.cli.tables import format_table
from video_assets.definitions import build_definitions
from video_assets.ingest.assets import videos_partitions
from video_assets.ingest.files import DroppedFile
from video_assets.ingest.keys import hash_of_key
from video_assets.ingest.library import VideoLibrary
from video_assets.predictions.assets import frame_predictions
from video_assets.settings import Settings
from video_assets.sql.assets import SQL_GROUP

Echo = Callable[[str], None]


@dataclass
class FileReport:
    file: DroppedFile
    status: str  # success | failed | canceled | duplicate | skipped | not run | still changing
    video_key: str = ""
    frames: str = ""
    detections: str = ""
    detail: str = ""


def process(settings: Settings, settle_timeout_s: float = 3600.0) -> int:
    """Returns the exit code: 0 if every video present at start succeeded, 1 otherwise.

    Dagster's own logs (code server, run workers) go to a log file under VIDEO_ASSETS_HOME/logs;
    the terminal gets progress and the summary.
    """
    prepare_environment(settings)
    log_path = settings.home / "logs" / f"process-{time.strftime('%Y%m%d-%H%M%S')}.log"
    with console_with_quiet_children(log_path) as console:
        echo = functools.partial(print, file=console, flush=True)
        echo(f"Dagster logs: {log_path}")
        return _process(settings, settle_timeout_s, echo)


def _process(settings: Settings, settle_timeout_s: float, echo: Echo) -> int:
    instance = dg.DagsterInstance.get()
    library = VideoLibrary.from_settings(settings)
    present = library.scan()
    echo(f"{len(present)} file(s) in {', '.join(str(f.path) for f in library.folders())}")
    with DagsterDriver(instance) as driver:
        settled, unsettled = _settle(driver, library, present, settings.sensor_interval_s, settle_timeout_s, echo)
        reports = _classify(instance, library, settled) + [FileReport(f, "still changing") for f in unsettled]
        _wait_for_runs(driver, reports, echo)
    _fill_outcomes(instance, driver, reports)
    if any(r.status == "success" for r in reports):
        _build_sql_models(settings, instance, echo)
    echo(_format(reports))
    return 1 if any(r.status in ("failed", "canceled", "not run") for r in reports) else 0


def _settle(
    driver: DagsterDriver,
    library: VideoLibrary,
    present: list[DroppedFile],
    interval_s: int,
    timeout_s: float,
    echo: Echo,
) -> tuple[list[DroppedFile], list[DroppedFile]]:
    """Tick the sensor until each file present at start (as it is now) is settled, or gone."""
    waiting = {f.file_id for f in present}
    settled: dict[str, DroppedFile] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        driver.tick_sensor()
        driver.launch_queued_runs()
        cursor = driver.sensor_cursor()
        current = {f.file_id: f for f in library.scan() if f.file_id in waiting}
        settled.update({fid: f for fid, f in current.items() if cursor.is_settled(f)})
        waiting = set(current) - set(settled)
        if not waiting or time.monotonic() > deadline:
            return list(settled.values()), [current[fid] for fid in sorted(waiting)]
        echo(f"waiting for {len(waiting)} file(s) to be picked up (a file still being written is waited for)")
        time.sleep(interval_s + 0.2)


def _classify(instance: dg.DagsterInstance, library: VideoLibrary, files: list[DroppedFile]) -> list[FileReport]:
    keys = set(instance.get_dynamic_partitions(videos_partitions.name))
    key_by_hash = {hash_of_key(k): k for k in sorted(keys)}
    reports = []
    for dropped in sorted(files, key=lambda f: f.file_id):
        if not dropped.is_video:
            reports.append(FileReport(dropped, "skipped", detail="not a video file"))
            continue
        key = library.key_for(dropped)
        if key in keys:
            reports.append(FileReport(dropped, "pending", video_key=key))
        elif hash_of_key(key) in key_by_hash:
            reports.append(FileReport(dropped, "duplicate", detail=f"same content as {key_by_hash[hash_of_key(key)]}"))
        else:
            reports.append(FileReport(dropped, "not run", video_key=key, detail="not registered by the sensor"))
    return reports


def _wait_for_runs(driver: DagsterDriver, reports: list[FileReport], echo: Echo) -> None:
    keys = [r.video_key for r in reports if r.status == "pending"]
    announced = -1
    while True:
        driver.launch_queued_runs()
        running = [k for k in keys if (run := driver.latest_run(k)) and run.status in UNFINISHED]
        if not running:
            return
        if len(running) != announced:
            echo(f"{len(running)} video run(s) in progress")
            announced = len(running)
        time.sleep(1)


def _fill_outcomes(instance: dg.DagsterInstance, driver: DagsterDriver, reports: list[FileReport]) -> None:
    for report in (r for r in reports if r.status == "pending"):
        run = driver.latest_run(report.video_key)
        if run is None:
            report.status, report.detail = "not run", "registered, but no run was launched"
        elif run.status == dg.DagsterRunStatus.SUCCESS:
            report.status = "success"
            metadata = _latest_prediction_metadata(instance, report.video_key)
            report.frames = f"{metadata.get('frames_processed', '?')}/{metadata.get('frames_expected', '?')}"
            report.detections = str(metadata.get("detections", "?"))
            report.detail = f"run {run.run_id[:8]}"
        else:
            report.status = "failed" if run.status == dg.DagsterRunStatus.FAILURE else "canceled"
            report.detail = f"run {run.run_id[:8]}: {_failure_message(instance, run.run_id)}"


def _latest_prediction_metadata(instance: dg.DagsterInstance, video_key: str) -> dict:
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=frame_predictions.key, asset_partitions=[video_key]), limit=1
    )
    if not result.records:
        return {}
    metadata = result.records[0].asset_materialization.metadata
    return {name: getattr(value, "value", value) for name, value in metadata.items()}


def _failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records
    for record in records:
        data = record.event_log_entry.dagster_event.step_failure_data
        if data.user_failure_data and data.user_failure_data.description:
            return data.user_failure_data.description
        if data.error:
            return data.error.message.strip().splitlines()[-1]
    return "the run did not succeed (see the run in the UI)"


def _build_sql_models(settings: Settings, instance: dg.DagsterInstance, echo: Echo) -> None:
    defs = build_definitions(settings)
    result = dg.materialize(
        list(defs.assets),
        selection=dg.AssetSelection.groups(SQL_GROUP),
        instance=instance,
        resources=defs.resources,
        raise_on_error=False,
    )
    built = sorted(e.asset_key.to_user_string() for e in result.get_asset_materialization_events())
    echo(f"SQL models built into {settings.warehouse_path}: {', '.join(built) or 'none'}"
         + ("" if result.success else " (some failed; see the run in the UI)"))


def _format(reports: list[FileReport]) -> str:
    header = ("file", "status", "video", "frames", "detections", "detail")
    rows = [
        (f"{r.file.source}/{r.file.relative_path}", r.status, r.video_key, r.frames, r.detections, r.detail)
        for r in reports
    ]
    failed = sum(r.status == "failed" for r in reports)
    succeeded = sum(r.status == "success" for r in reports)
    return format_table(header, rows) + f"\n{succeeded} succeeded, {failed} failed, {len(reports)} file(s) in all"
