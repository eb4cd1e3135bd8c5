"""Predictions: frame_predictions (after the backend's own steps, if it has any), the backend, the backfill."""

from typing import Any

import dagster as dg

from video_assets.backends.base import BackendError
from video_assets.backends.registry import backend_kind
from video_assets.backends.resource import Backend
from video_assets.predictions.assets import build_frame_predictions
from video_assets.predictions.backfill import build_backfill_schedule
from video_assets.predictions.store import PredictionStore
from video_assets.settings import API_KEY_ENV, Settings


def prediction_definitions(settings: Settings) -> dg.Definitions:
    kind = backend_kind(settings.backend.kind)
    steps = kind.steps() if kind.steps else []
    predictions = build_frame_predictions([s.key for s in steps[-1:]], configured_workflow_version(settings))
    return dg.Definitions(
        assets=[*steps, predictions],
        schedules=[build_backfill_schedule(settings.backfill_cron, settings.backfill_batch, settings.source_queues)],
        resources={"backend": bind_backend(settings), "store": PredictionStore.from_settings(settings)},
    )


def backend_config(settings: Settings) -> dict[str, Any]:
    """The `backend` resource's values: the kind and fields from settings, the state folder, and on many
    machines the Postgres the job ledgers share (never its password: the variable's name)."""
    config = {"kind": settings.backend.kind, "state_dir": str(settings.state_dir), **settings.backend.values}
    if settings.cluster is not None:
        pg = settings.cluster.postgres
        config["ledger_postgres"] = f"host={pg.host} port={pg.port} dbname={pg.database} user={pg.user}"
        config["ledger_password_env"] = pg.password_env
    return config


def bind_backend(settings: Settings) -> Any:
    """The `backend` resource, its values run-config defaults that one run may override."""
    config = backend_config(settings)
    if settings.backend.api_key_set:
        # Only when set: an unset EnvVar fails every run. The value is read when a run starts, never stored.
        config["api_key"] = dg.EnvVar(API_KEY_ENV)
    return Backend.configure_at_launch(**config)


def configured_workflow_version(settings: Settings) -> str | None:
    """The workflow version the configured backend runs: frame_predictions' code version. With drop
    folders that have their own workflow, all of them (`default;source=version;...`).

    None when it cannot be known at load time (an unreadable workflow file or a missing model package
    fails the run, not the load).
    """
    try:
        versions = Backend(**backend_config(settings)).workflow_versions()
    except BackendError:
        return None
    return ";".join(f"{source}={version}" if source else version for source, version in versions.items())
