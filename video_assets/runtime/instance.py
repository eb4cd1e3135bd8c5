"""The persistent Dagster instance under VIDEO_ASSETS_HOME that the CLI, the daemon, the webserver and
the run workers share, and its dagster.yaml, written from the settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from video_assets.runtime.celery import launcher_config, prepare_folders
from video_assets.settings import Settings

MANAGED = (
    "# Managed by video-assets: rewritten from its settings at every start. Delete this line to keep your own edits."
)
RUN_MONITOR_POLL_S = 2  # how often the daemon checks that each run's worker is alive
# Each worker process has a second run waiting in Celery behind the one it runs: a process that ends a video
# starts the next at once, instead of after the run queue's next dequeue (a 1 s loop) and the launch (about
# 0.8 s per run, measured in benchmark rows h and n).
RUNS_PER_WORKER = 2
CANCEL_TIMEOUT_S = 60  # a run still CANCELING by then is marked CANCELED
DEFAULT_MAX_RUNTIME_S = 24 * 3600
SKIPPED_TICK_DAYS = 1


def instance_config(settings: Settings) -> dict[str, Any]:
    """dagster.yaml: the run queue, the Celery run launcher, run monitoring, the `duckdb` pool, tick retention;
    on many machines also Postgres storage and compute logs in the object store. No secret is written:
    passwords are `env:` references, object-store credentials come from the standard AWS variables."""
    runs, backfill_runs = settings.workers * RUNS_PER_WORKER, max(1, (settings.workers - 1) * RUNS_PER_WORKER)
    return {
        **(_cluster_storage(settings) if settings.cluster else {}),
        "telemetry": {"enabled": False},
        "retention": tick_retention(settings),
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {"dequeue_interval_seconds": 1},
        },
        "run_launcher": {
            "module": "video_assets.runtime.launcher",
            "class": "RunLauncher",
            "config": launcher_config(settings),
        },
        "run_monitoring": {
            "enabled": True,
            "poll_interval_seconds": RUN_MONITOR_POLL_S,
            # A run waiting behind another in a worker process is STARTING until that one ends (its own max
            # runtime at most), and so is a run no worker has taken yet: Celery keeps it until one comes.
            "start_timeout_seconds": DEFAULT_MAX_RUNTIME_S,
            "cancel_timeout_seconds": CANCEL_TIMEOUT_S,
            "max_resume_run_attempts": 0,  # a run whose worker died fails, and the backfill re-runs it
            # A backstop for runs without their own limit (video runs set `dagster/max_runtime` from the video).
            "max_runtime_seconds": DEFAULT_MAX_RUNTIME_S,
        },
        "concurrency": {
            # One run per video; a worker process runs one at a time, with one more waiting.
            "runs": {
                "max_concurrent_runs": runs,
                # Backfills (the nightly schedule's and the UI's) leave room for newly dropped videos.
                "tag_concurrency_limits": [
                    {"key": "video_assets/backfill", "limit": backfill_runs},
                    {"key": "dagster/backfill", "limit": backfill_runs},
                ],
            },
            # The SQL models share pool "duckdb": one writer of the warehouse at a time.
            "pools": {"default_limit": 1},
        },
    }


def _cluster_storage(settings: Settings) -> dict[str, Any]:
    assert settings.cluster is not None
    pg, store = settings.cluster.postgres, settings.cluster.store
    database = {
        "username": pg.user,
        "hostname": pg.host,
        "port": pg.port,
        "db_name": pg.database,
        # psycopg2: under SQLAlchemy 2.1 a bare postgresql:// means psycopg 3, which is not installed.
        "scheme": "postgresql+psycopg2",
        **({"password": {"env": pg.password_env}} if pg.password_env else {}),
    }
    bucket, _, prefix = store.url.removeprefix("s3://").partition("/")
    logs = {"bucket": bucket, "prefix": f"{prefix.strip('/')}/compute-logs".strip("/"), "region": store.region,
            "local_dir": str(settings.state_dir / "compute-logs"), "skip_empty_files": True, "upload_interval": 30}  # fmt: skip
    if store.endpoint:
        logs["endpoint_url"] = store.endpoint
    return {
        # dagster-postgres's storage, which keeps its connections in the run workers (runtime/postgres.py).
        "storage": {
            "custom": {
                "module": "video_assets.runtime.postgres",
                "class": "PostgresStorage",
                "config": {"postgres_db": database},
            }
        },
        "compute_logs": {
            "module": "dagster_aws.s3.compute_log_manager",
            "class": "S3ComputeLogManager",
            "config": logs,
        },
    }


def tick_retention(settings: Settings) -> dict[str, Any]:
    """How long the daemon keeps sensor and schedule ticks (it purges them itself): skipped sensor ticks
    (one every few seconds per sensor) for a day, the rest as long as runs (VIDEO_ASSETS_KEEP_RUNS)."""
    days = settings.retention.runs.days
    keep = -1 if days is None else max(1, round(days))  # -1: forever
    statuses = {"skipped": SKIPPED_TICK_DAYS, "success": keep, "failure": keep, "started": keep}
    return {
        "schedule": {"purge_after_days": keep},
        "sensor": {"purge_after_days": statuses},
        "auto_materialize": {"purge_after_days": dict(statuses)},
    }


def prepare_environment(settings: Settings, create_storage: bool = True) -> None:
    """Create the folders, write dagster.yaml, and point this process (and what it starts) at them.

    `create_storage=False` leaves the instance's storage to `local_services`, which creates it while the
    run workers it starts first import `inference`."""
    for folder in (
        settings.inbox,
        settings.predictions_dir,
        settings.dagster_home,
        settings.state_dir,
        settings.logs_dir,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    prepare_folders(settings)
    write_instance_yaml(settings)
    # What this process starts (daemon, workers, webserver) loads the same settings.
    os.environ["VIDEO_ASSETS_HOME"] = str(settings.home)
    os.environ["VIDEO_ASSETS_SENSOR_INTERVAL"] = str(settings.sensor_interval_s)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    if create_storage:
        create_instance_storage()


def create_instance_storage() -> None:
    """Create (or migrate) the instance's storage once, before the processes that share it start:
    processes that create it at the same time can leave its SQLite schema version in a state none of
    them can read."""
    with dg.DagsterInstance.get():
        pass


def write_instance_yaml(settings: Settings) -> Path:
    """Write dagster.yaml unless a person took it over (removed the MANAGED line)."""
    path = settings.dagster_home / "dagster.yaml"
    if path.exists() and MANAGED not in path.read_text():
        return path
    body = yaml.safe_dump(instance_config(settings), sort_keys=False)
    path.write_text(f"{MANAGED}\n{body}")
    return path
