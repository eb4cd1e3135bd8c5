"""`video-assets retention [--dry-run]`: apply the retention settings now (what the scheduled job does)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import dagster as dg

from video_assets.retention.policy import DAY_S
from video_assets.retention.sweep import carry_out, plan_retention
from video_assets.settings import Settings, format_bytes

echo = functools.partial(print, flush=True)


def run(settings: Settings, dry_run: bool) -> int:
    from video_assets.runtime.instance import prepare_environment

    prepare_environment(settings)
    with dg.DagsterInstance.get() as instance:
        plan = plan_retention(settings, instance, datetime.now(UTC))
        if dry_run:
            now = plan.now.timestamp()
            for action in plan.actions:
                age = (now - action.at) / DAY_S
                echo(f"{action.kind:13} {action.verb:7} {format_bytes(action.bytes):>9}  {age:6.1f} d  {action.what}")
        else:
            carry_out(plan, settings, echo)
    echo(plan.summary(dry_run))
    return 1 if plan.errors else 0
