"""The `retention` job and its schedule: apply the retention settings, report what was removed.

It runs on the run workers like any run; its one step's output metadata lists what it removed (per
kind, in total, and the first items), so the run's page in the UI is the report. Launch it from the
UI with `dry_run: true` (or run `video-assets retention --dry-run`) to see what it would remove.
"""

from datetime import UTC, datetime

import dagster as dg

from video_assets.retention.sweep import carry_out, plan_retention
from video_assets.settings import Settings

JOB_NAME = "retention"
SCHEDULE_NAME = "retention_schedule"


class RetentionConfig(dg.Config):
    dry_run: bool = False  # list what would be removed, remove nothing


def build_retention_job(settings: Settings) -> dg.JobDefinition:
    @dg.op(
        name="apply_retention",
        out=dg.Out(dg.Nothing),
        description="Removes what the retention settings (VIDEO_ASSETS_KEEP_*) no longer keep, and reports it.",
    )
    def apply_retention(context: dg.OpExecutionContext, config: RetentionConfig) -> dg.Output:
        plan = plan_retention(settings, context.instance, datetime.now(UTC))
        if not config.dry_run:
            plan = carry_out(plan, settings, context.log.warning)
        context.log.info(plan.summary(config.dry_run))
        if plan.errors:
            raise dg.Failure(
                description=f"Retention could not remove {len(plan.errors)} item(s); the rest was removed.",
                metadata=plan.metadata(config.dry_run),
            )
        return dg.Output(None, metadata=plan.metadata(config.dry_run))

    @dg.job(name=JOB_NAME, description="Applies the retention settings (docs/running-for-months.md).")
    def retention() -> None:
        apply_retention()

    return retention


def build_retention_schedule(job: dg.JobDefinition, cron: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=SCHEDULE_NAME,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Runs the retention job (VIDEO_ASSETS_RETENTION_CRON).",
    )
