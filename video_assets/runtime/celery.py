"""The Celery app that carries runs from Dagster's run queue to the run workers, configured in one place.

On one machine the broker and the result backend are folders under VIDEO_ASSETS_HOME/state/celery
(kombu's filesystem transport and Celery's file result backend): nothing to install or start, and the
filesystem transport implements fanout, so run termination (a broadcast `revoke`) reaches the workers.
On many machines (a cluster file) they are Redis. The same settings render the `run_launcher` section
of the instance's dagster.yaml (read by the daemon and the webserver, which send runs) and build the
app the workers load (which receive them); a Redis password comes from the environment, never a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from video_assets.settings import Settings, url_with_password

QUEUE = "dagster"  # dagster-celery's default queue; a run's `dagster-celery/queue` tag picks another
POLL_S = 0.1  # how often an idle worker looks for a new run (the filesystem transport polls)


def celery_folder(settings: Settings) -> Path:
    return settings.state_dir / "celery"


def launcher_config(settings: Settings) -> dict[str, Any]:
    """The run launcher's config (dagster.yaml), which is also the workers' app configuration."""
    if settings.cluster is not None:
        return _redis_config(settings)
    folder = celery_folder(settings)
    return {
        "broker": "filesystem://",
        "backend": f"file://{folder / 'results'}",
        "default_queue": QUEUE,
        "config_source": {
            "broker_transport_options": {
                "data_folder_in": str(folder / "queue"),
                "data_folder_out": str(folder / "queue"),
                "control_folder": str(folder / "control"),
                "processed_folder": str(folder / "processed"),
                "store_processed": False,
                "polling_interval": POLL_S,
            },
            "broker_connection_retry_on_startup": True,
            # With a polling transport, a prefork worker that may reserve only one message per process fetches
            # the next run only when its 2 s poll times out (measured: 1.7 s median dispatch vs 0.06 s with 4).
            # Dagster's run queue already bounds the runs in flight, and each process still runs one at a time.
            "worker_prefetch_multiplier": 4,
            "worker_max_tasks_per_child": settings.worker_max_runs,  # then it is replaced (bounds leaks)
            "worker_proc_alive_timeout": 120,  # generous: a new process on a busy machine may be slow to report
            "worker_hijack_root_logger": False,
            "result_expires": 7 * 24 * 3600,
        },
    }


def _redis_config(settings: Settings) -> dict[str, Any]:
    assert settings.cluster is not None
    redis = settings.cluster.redis
    # Runs are acknowledged when a worker takes them; the visibility timeout still outlasts any run, so
    # that a message is never handed out twice (Celery's Redis transport redelivers after it).
    transport = {"visibility_timeout": redis.visibility_timeout_s}
    config: dict[str, Any] = {
        "broker": redis.url,
        "backend": redis.url,
        "default_queue": QUEUE,
        "config_source": {
            "broker_transport_options": dict(transport),
            "result_backend_transport_options": dict(transport),
            "broker_connection_retry_on_startup": True,
            "broker_connection_max_retries": None,  # a restarted Redis is waited for, not given up on
            # An asynchronous transport: a process holds the run it runs (acknowledged when it started) and one
            # more, not the runs another machine could start now.
            "worker_prefetch_multiplier": 1,
            "worker_max_tasks_per_child": settings.worker_max_runs,
            "worker_proc_alive_timeout": 120,
            "worker_hijack_root_logger": False,
            "result_expires": 7 * 24 * 3600,
        },
    }
    if redis.password_env:
        config["password_env"] = redis.password_env
    return config


def prepare_folders(settings: Settings) -> None:
    if settings.cluster is not None:
        return
    folder = celery_folder(settings)
    for name in ("queue", "control", "processed", "results"):
        (folder / name).mkdir(parents=True, exist_ok=True)


def make_celery_app(settings: Settings) -> Any:
    """The app the launcher sends runs with, built from the same config (dagster_celery's own factory)."""
    from dagster_celery.config import DEFAULT_CONFIG
    from dagster_celery.make_app import make_app

    config = launcher_config(settings)
    return make_app(
        app_args={
            "broker": url_with_password(config["broker"], config.get("password_env")),
            "backend": url_with_password(config["backend"], config.get("password_env")),
            "include": [],
            "config_source": {**DEFAULT_CONFIG, **config["config_source"]},
            "task_default_queue": config["default_queue"],
        }
    )
