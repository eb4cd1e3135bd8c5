"""The run launcher: dagster-celery's CeleryRunLauncher, with two things said clearly.

- Termination is recorded as a cancellation: CeleryRunLauncher.terminate revokes the run's Celery task
  (the worker interrupts the run) but, unlike Dagster's default launcher, does not first mark the run
  CANCELING; the interrupted run then ends as FAILURE ("interrupted unexpectedly") and the nightly
  backfill would retry what a person stopped.
- A run the broker cannot take (a full disk under the queue folder, a broker that is down) fails with
  a message that names the broker and what to do, instead of the transport's internal error alone.
"""

from __future__ import annotations

from typing import Any

from dagster import Field, Noneable
from dagster_celery.launcher import CeleryRunLauncher

from video_assets.settings import url_with_password


class RunLauncher(CeleryRunLauncher):
    def __init__(self, *args: Any, password_env: str | None = None, **kwargs: Any):
        """`password_env` names the variable holding the broker's password: dagster.yaml never holds it."""
        self.password_env = password_env
        if password_env:
            kwargs["broker"] = url_with_password(kwargs.get("broker"), password_env)
            kwargs["backend"] = url_with_password(kwargs.get("backend"), password_env)
        super().__init__(*args, **kwargs)

    @classmethod
    def config_type(cls) -> Any:
        base = super().config_type()
        assert isinstance(base, dict)
        return {**base, "password_env": Field(Noneable(str), is_required=False)}

    def launch_run(self, context: Any) -> None:
        try:
            super().launch_run(context)
        except Exception as exc:
            root = exc
            while root.__cause__ is not None or root.__context__ is not None:
                root = root.__cause__ or root.__context__  # type: ignore[assignment]
            because = f": {root}" if root is not exc else ""
            raise RuntimeError(
                f"The run queue ({self._where()}) did not take the run{because} ({exc}). "
                "Free disk space there or start the broker, then re-run the video."
            ) from exc

    def _where(self) -> str:
        options = (self.config_source or {}).get("broker_transport_options") or {}
        return str(options.get("data_folder_in") or str(self.broker).split("@")[-1])  # never a password

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None:
            return False
        self._instance.report_run_canceling(run)
        return super().terminate(run_id)
