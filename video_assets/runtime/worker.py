"""A run worker: the Celery app that `celery --app video_assets.runtime.worker worker` serves.

Each worker process executes whole runs in-process (dagster-celery's `execute_job` task) and lives on
between runs: what the configured backend needs (`inference` and its Workflows engine, for self-hosted
workflows) is imported once, by the worker's main process before it forks them, so a short clip costs
its frames, not a fresh interpreter. Celery replaces a process after VIDEO_ASSETS_WORKER_MAX_RUNS runs
(bounding leaks) and when it dies (a decoder that crashes kills only its own run); the replacement is
forked with the imports done.
"""

from __future__ import annotations

import gc
from typing import Any

import dagster as dg
from celery.signals import task_postrun, task_prerun, worker_init
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task

from video_assets.backends.registry import backend_kind
from video_assets.backends.resource import Backend
from video_assets.predictions.defs import backend_config
from video_assets.runtime.celery import make_celery_app
from video_assets.runtime.postgres import keep_connections
from video_assets.runtime.services import record_worker_error
from video_assets.settings import Settings

settings = Settings.from_env()
app = make_celery_app(settings)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)


@worker_init.connect
def warm_up(**_: Any) -> None:
    """Load the code location and import what the configured backend runs with, once, in the worker's main
    process before it forks the processes that run videos (and, later, the replacements of recycled ones):
    imports start no threads, so a fork carries them over whole.

    A failure is written where `video-assets process` looks, so it says why instead of waiting.
    """
    try:
        from video_assets.definitions import defs

        defs()
        kind = backend_kind(settings.backend.kind)
        if kind.warm_up is not None:
            kind.warm_up(Backend(**backend_config(settings)))
    except BaseException as exc:
        record_worker_error(settings, f"{type(exc).__name__}: {exc}")
        raise
    keep_connections()
    # What was imported stays for the process's life: out of the cycle collector's sight, a full collection
    # in a worker process takes milliseconds instead of half a second, and does not copy the shared pages.
    gc.freeze()


@dg.op
def _nothing() -> None:
    """The op of `placeholder_job`."""


@dg.job
def placeholder_job() -> None:
    """Loaded before each run so that the run loads its own job afresh (see load_code_location_afresh)."""
    _nothing()


@task_prerun.connect
def load_code_location_afresh(**_: Any) -> None:
    """Each run loads the code location anew (settings, workflow file, SQL models; about 0.1 s), so a
    workflow changed since the last run is what runs *and* the code version recorded (Dagster marks
    partitions stale by it).

    Dagster keeps the last job definition a process loaded (one entry, keyed by the job's identity, which
    consecutive video runs share): loading another job first makes the run load its own again. The warm
    worker tests fail if a Dagster upgrade changes this.
    """
    dg.reconstructable(placeholder_job).get_definition()


@task_postrun.connect
def free_the_run(**_: Any) -> None:
    """The run's instance is garbage now (dagster-celery opens one per run): free it, and with it the
    connections it kept to Postgres, before the next run opens its own."""
    gc.collect()
