"""Retention: the `retention` job and its schedule."""

import dagster as dg

from video_assets.retention.job import build_retention_job, build_retention_schedule
from video_assets.settings import Settings


def retention_definitions(settings: Settings) -> dg.Definitions:
    job = build_retention_job(settings)
    return dg.Definitions(jobs=[job], schedules=[build_retention_schedule(job, settings.retention.cron)])
