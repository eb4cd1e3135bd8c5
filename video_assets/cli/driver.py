"""Do in this process what the Dagster daemon does for `dagster dev`: sensor ticks and run launches.

The CLI loads the same workspace.yaml as `dagster dev`, so the sensor's cursor, its ticks and the
runs it requests live in the shared instance exactly as if the daemon had made them, and show up
in the UI. These are Dagster's own daemon iterations (internal API, pinned Dagster version).
"""

from __future__ import annotations

import logging
from typing import Any

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.tags import PARTITION_NAME_TAG
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._daemon.sensor import execute_sensor_iteration

from video_assets.cli.instance import workspace_file
from video_assets.ingest.sensor import SENSOR_NAME
from video_assets.ingest.tick import DropCursor

_LOG = logging.getLogger("video_assets.cli")
UNFINISHED = {
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
}


class DriverError(RuntimeError):
    """The code location or the sensor is not in a state the CLI can drive."""


class DagsterDriver:
    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance
        self._context = WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace_file())]))
        self._dequeuer = QueuedRunCoordinatorDaemon(interval_seconds=1)

    def __enter__(self) -> DagsterDriver:
        self._context.__enter__()
        try:
            self._sensor = self._find_sensor()
        except BaseException:
            self._context.__exit__(None, None, None)  # stop the code server now, not at its heartbeat timeout
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._context.__exit__(*exc_info)

    def tick_sensor(self) -> None:
        """Evaluate the drop-folder sensor once (skipped if its minimum interval has not passed)."""
        for _ in execute_sensor_iteration(self._context, _LOG, None, None):
            pass

    def run_backfills(self) -> None:
        """Advance backfills launched from the UI (or GraphQL) by one daemon iteration."""
        for _ in execute_backfill_iteration(self._context, _LOG):
            pass

    def request_context(self) -> Any:
        return self._context.create_request_context()

    def launch_queued_runs(self) -> None:
        for _ in self._dequeuer.run_iteration(self._context):
            pass

    def sensor_cursor(self) -> DropCursor:
        state = self.instance.get_instigator_state(self._sensor.get_remote_origin_id(), self._sensor.selector_id)
        data = state.instigator_data if state else None
        return DropCursor.from_json(getattr(data, "cursor", None))

    def latest_run(self, video_key: str) -> dg.DagsterRun | None:
        runs = self.instance.get_runs(filters=dg.RunsFilter(tags={PARTITION_NAME_TAG: video_key}), limit=1)
        return runs[0] if runs else None

    def _find_sensor(self) -> Any:
        request = self._context.create_request_context()
        for entry in request.get_code_location_entries().values():
            if entry.load_error:
                raise DriverError(f"Code location {entry.origin.location_name} failed to load:\n{entry.load_error}")
            for repo in entry.code_location.get_repositories().values():
                if repo.has_sensor(SENSOR_NAME):
                    sensor = repo.get_sensor(SENSOR_NAME)
                    state = self.instance.get_instigator_state(sensor.get_remote_origin_id(), sensor.selector_id)
                    if not sensor.get_current_instigator_state(state).is_running:
                        raise DriverError(
                            f"The sensor {SENSOR_NAME} is stopped in this instance; start it in the UI "
                            f"(Automation tab) or with `dagster sensor start {SENSOR_NAME}`."
                        )
                    return sensor
        raise DriverError(f"No sensor named {SENSOR_NAME} in {workspace_file()}")
