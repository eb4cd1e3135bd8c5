"""`video-assets process`: everything in the drop folders, through the daemon and the run workers, then SQL.

It starts the Dagster daemon and the run workers (or uses those of a running `video-assets dev`),
waits until the drop-folder sensor has taken every file present at start (a file still being written
is waited for), waits for each video's run, builds the SQL models and prints one line per file. It
follows progress only through the instance (partitions, runs, materializations), and never waits
forever: a file the sensor does not take, or a run that outlives its max runtime, ends the wait with
a line that says so.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import dagster as dg

from video_assets.cli.console import console_with_quiet_children
from video_assets.cli.tables import format_table
from video_assets.definitions import build_definitions
from video_assets.ingest.assets import VIDEO_PARTITIONS
from video_assets.ingest.files import DroppedFile
from video_assets.ingest.keys import hash_of_key
from video_assets.ingest.library import VideoLibrary
from video_assets.ingest.sensor import SENSOR_NAME
from video_assets.predictions.assets import FRAME_PREDICTIONS
from video_assets.runs import MAX_RUNTIME_TAG, UNFINISHED, failure_of, runs_by_partition
from video_assets.runtime.instance import RUN_MONITOR_POLL_S, prepare_environment
from video_assets.runtime.services import ServiceError, Services, local_services
from video_assets.settings import Settings
from video_assets.sql.assets import BUILD_SQL_MODELS

Echo = Callable[[str], None]
POLL_S = 0.5
PROCESS_SENSOR_INTERVAL_S = 1
STABLE_S = 1.0  # unchanged this long: worth hashing to find the key the sensor will register
RUN_APPEARS_S = 30.0  # a registered video's run is created in the same sensor tick; allow for a busy daemon
STUCK_GRACE_S = 3 * RUN_MONITOR_POLL_S + 30.0  # run monitoring fails a run past its max runtime within this
# The order of statuses in the last line; the first ones mean "not done": exit code 1.
STATUSES = ("failed", "canceled", "not run", "still changing", "stuck", "success", "duplicate", "skipped")
NOT_DONE = frozenset(STATUSES[:5])


@dataclass
class FileReport:
    file: DroppedFile
    status: str = "waiting"  # one of STATUSES once decided; "pending" while its run is awaited
    video_key: str = ""
    frames: str = ""
    detections: str = ""
    detail: str = ""
    stable_since: float | None = None


def process(settings: Settings, settle_timeout_s: float = 3600.0) -> int:
    """Returns the exit code: 0 if every video present at start succeeded, 1 otherwise, 2 if it could not run."""
    # The daemon `process` starts ticks the sensor every second (the daemon's loop makes that every few
    # seconds): files present at start are taken at its first tick once unchanged for two seconds.
    settings = replace(settings, sensor_interval_s=min(settings.sensor_interval_s, PROCESS_SENSOR_INTERVAL_S))
    prepare_environment(settings, create_storage=False)  # local_services creates it, the run workers started
    log_path = settings.logs_dir / f"process-{time.strftime('%Y%m%d-%H%M%S')}.log"
    with console_with_quiet_children(log_path) as console:
        echo = functools.partial(print, file=console, flush=True)
        echo(f"Logs: {settings.logs_dir} (daemon.log, workers.log, {log_path.name})")
        try:
            build_definitions(settings)  # what the daemon and the workers will load: fail here, and say why
        except Exception as exc:
            echo(f"video-assets: the code location does not load: {type(exc).__name__}: {exc}")
            return 2
        try:
            with local_services(settings) as services, dg.DagsterInstance.get() as instance:
                if not services.services:
                    echo("Using the daemon and run workers of the running `video-assets dev`.")
                reports = _Progress(settings, instance, services, echo).run(settle_timeout_s)
                if any(r.status == "success" for r in reports):
                    _build_sql_models(settings, instance, echo)
        except ServiceError as exc:
            echo(f"video-assets: {exc}")
            return 2
        echo(_format(reports))
    return 1 if any(r.status in NOT_DONE for r in reports) else 0


class _Progress:
    """Follows the files present at start: settled and registered by the sensor, then run."""

    def __init__(self, settings: Settings, instance: dg.DagsterInstance, services: Services, echo: Echo):
        self.library = VideoLibrary.from_settings(settings)
        self.instance = instance
        self.services = services
        self.echo = echo
        self.register_timeout_s = max(90.0, 10.0 * settings.sensor_interval_s)

    def run(self, settle_timeout_s: float) -> list[FileReport]:
        present = self.library.scan()
        self.echo(f"{len(present)} file(s) in {', '.join(str(f.path) for f in self.library.folders())}")
        reports = [FileReport(f) for f in present]
        self._settle(reports, time.monotonic() + settle_timeout_s)
        self._wait_for_runs([r for r in reports if r.status == "pending"])
        return sorted(reports, key=lambda r: r.file.file_id)

    def _settle(self, reports: list[FileReport], deadline: float) -> None:
        """Until every file is registered by the sensor (or a duplicate, or not a video), or the deadline."""
        announced = -1
        while True:
            self.services.check()
            now = time.monotonic()
            current = {f.file_id: f for f in self.library.scan()}
            keys = set(self.instance.get_dynamic_partitions(VIDEO_PARTITIONS))
            key_by_hash = {hash_of_key(k): k for k in sorted(keys)}
            waiting = [r for r in reports if r.status == "waiting"]
            for report in waiting:
                self._look(report, current.get(report.file.file_id), keys, key_by_hash, now)
            waiting = [r for r in reports if r.status == "waiting"]
            if not waiting:
                return
            if now > deadline:
                for report in waiting:
                    report.status = "still changing" if report.stable_since is None else "not run"
                    report.detail = report.detail or "not settled before --settle-timeout"
                return
            if len(waiting) != announced:
                self.echo(
                    f"waiting for the sensor to take {len(waiting)} file(s) (a file still being written is waited for)"
                )
                announced = len(waiting)
            time.sleep(POLL_S)

    def _look(
        self,
        report: FileReport,
        seen: DroppedFile | None,
        keys: set[str],
        key_by_hash: dict[str | None, str],
        now: float,
    ) -> None:
        if seen is None:
            report.status, report.detail = "not run", "removed from the drop folder before it was taken"
        elif not seen.is_video:
            report.status, report.detail = "skipped", "not a video file"
        elif seen.fingerprint != report.file.fingerprint or report.stable_since is None:
            report.file, report.stable_since = seen, now
        elif now - report.stable_since >= STABLE_S:
            key = self.library.key_for(seen)
            if key in keys:
                report.status, report.video_key = "pending", key
            elif hash_of_key(key) in key_by_hash:
                report.status, report.detail = "duplicate", f"same content as {key_by_hash[hash_of_key(key)]}"
            elif now - report.stable_since > self.register_timeout_s:
                report.status, report.video_key = "not run", key
                report.detail = (
                    f"the {SENSOR_NAME} did not take it within {self.register_timeout_s:.0f} s: is the sensor "
                    f"stopped? Start it in the UI (Automation) or with `dagster sensor start {SENSOR_NAME}`"
                )

    def _wait_for_runs(self, reports: list[FileReport]) -> None:
        started = time.monotonic()
        waiting = {r.video_key: r for r in reports}
        announced = -1
        while waiting:
            self.services.check()
            runs = runs_by_partition(self.instance, waiting)  # one query for all, newest run first
            for key, report in list(waiting.items()):
                record = runs[key][0] if runs.get(key) else None
                if record is None:
                    if time.monotonic() - started > RUN_APPEARS_S:
                        report.status, report.detail = "not run", "registered, but no run was launched"
                        del waiting[key]
                elif (run := record.dagster_run).status not in UNFINISHED:
                    self._outcome(report, run)
                    del waiting[key]
                elif _stuck(record):
                    report.status = "stuck"
                    report.detail = (
                        f"run {run.run_id[:8]} is still {run.status.value} past its max runtime; stopped waiting "
                        "(see the run in the UI; is its worker alive?)"
                    )
                    del waiting[key]
            if len(waiting) != announced and waiting:
                self.echo(f"{len(waiting)} video run(s) queued or in progress")
                announced = len(waiting)
            time.sleep(POLL_S)

    def _outcome(self, report: FileReport, run: dg.DagsterRun) -> None:
        if run.status == dg.DagsterRunStatus.SUCCESS:
            report.status = "success"
            metadata = _latest_prediction_metadata(self.instance, report.video_key)
            report.frames = f"{metadata.get('frames_processed', '?')}/{metadata.get('frames_expected', '?')}"
            report.detections = str(metadata.get("detections", "?"))
            report.detail = f"run {run.run_id[:8]}"
        elif run.status == dg.DagsterRunStatus.CANCELED:
            report.status, report.detail = "canceled", f"run {run.run_id[:8]} was canceled"
        else:
            report.status = "failed"
            report.detail = f"run {run.run_id[:8]}: {failure_of(self.instance, run.run_id)[0]}"


def _stuck(record: dg.RunRecord) -> bool:
    """In progress longer than its max runtime allows, and run monitoring has not ended it."""
    limit = record.dagster_run.tags.get(MAX_RUNTIME_TAG)
    if not limit or record.start_time is None:
        return False
    return time.time() - record.start_time > float(limit) + STUCK_GRACE_S


def _latest_prediction_metadata(instance: dg.DagsterInstance, video_key: str) -> dict:
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=FRAME_PREDICTIONS, asset_partitions=[video_key]), limit=1
    )
    materialization = result.records[0].asset_materialization if result.records else None
    if materialization is None:
        return {}
    metadata = materialization.metadata
    return {name: getattr(value, "value", value) for name, value in metadata.items()}


def _build_sql_models(settings: Settings, instance: dg.DagsterInstance, echo: Echo) -> None:
    job = build_definitions(settings).resolve_job_def(BUILD_SQL_MODELS)
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    if _interrupted(result):
        raise KeyboardInterrupt  # stop as for Ctrl-C at any other moment (exit code 130)
    built = sorted(e.asset_key.to_user_string() for e in result.get_asset_materialization_events() if e.asset_key)
    failed = "" if result.success else " (some failed; see the run in the UI)"
    echo(f"SQL models built into {settings.warehouse_path}: {', '.join(built) or 'none'}{failed}")


def _interrupted(result: dg.ExecuteInProcessResult) -> bool:
    """Ctrl-C (or SIGTERM) during an in-process run: Dagster records the run as failed and returns, instead of
    raising KeyboardInterrupt."""
    if result.dagster_run.status != dg.DagsterRunStatus.FAILURE:
        return False
    error = getattr(result.get_run_failure_event().event_specific_data, "error", None)
    return error is not None and error.cls_name == dg.DagsterExecutionInterruptedError.__name__


def _format(reports: list[FileReport]) -> str:
    header = ("file", "status", "video", "frames", "detections", "detail")
    rows = [
        (f"{r.file.source}/{r.file.relative_path}", r.status, r.video_key, r.frames, r.detections, r.detail)
        for r in reports
    ]
    counts = [
        f"{n} {'succeeded' if status == 'success' else status}"
        for status in STATUSES
        if (n := sum(r.status == status for r in reports))
    ]
    return format_table(header, rows) + f"\n{', '.join(counts) or 'nothing'}; {len(reports)} file(s) in all"
