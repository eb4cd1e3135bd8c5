"""The run launcher: dagster-celery's CeleryRunLauncher, with termination recorded as a cancellation.

CeleryRunLauncher.terminate revokes the run's Celery task (the worker interrupts the run) but, unlike
Dagster's default launcher, does not first mark the run CANCELING; the interrupted run then ends as
FAILURE ("interrupted unexpectedly") and the nightly backfill would retry what a person stopped. This
subclass marks the run CANCELING first, so Dagster records it as CANCELED.
"""

from __future__ import annotations

from dagster_celery.launcher import CeleryRunLauncher


class RunLauncher(CeleryRunLauncher):
    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None:
            return False
        self._instance.report_run_canceling(run)
        return super().terminate(run_id)
