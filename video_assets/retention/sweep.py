"""One pass of retention over every kind: what would go (a plan), then carrying it out (unless a dry run).

The settings are in one place (VIDEO_ASSETS_KEEP_*, VIDEO_ASSETS_PROCESSED_SOURCES; settings.py) and
docs/running-for-months.md says what each kind is and what removing it means. One failing removal
never stops the others; every failure is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg

from video_assets.ingest.library import VideoLibrary
from video_assets.predictions.store import PredictionStore
from video_assets.retention.logs import expired_log_candidates, rotate_actions
from video_assets.retention.policy import DAY_S, Action, choose, markdown
from video_assets.retention.predictions import prediction_actions
from video_assets.retention.runs import RunScan, compute_log_actions, run_actions
from video_assets.retention.segments import segment_actions
from video_assets.retention.sources import source_actions
from video_assets.settings import Keep, Settings, format_bytes
from video_assets.storage import read_json, write_json
from video_assets.streams.store import CameraStore

STATE_FILE = "retention.json"  # under state/: how far the runs have been examined
KINDS = ("segments", "logs", "runs", "compute_logs", "sources", "predictions")


@dataclass
class Plan:
    now: datetime
    actions: list[Action]
    runs: RunScan | None = None
    compute_logs: RunScan | None = None
    errors: list[str] = field(default_factory=list)

    def by_kind(self, kind: str) -> list[Action]:
        return [a for a in self.actions if a.kind == kind]

    def metadata(self, dry_run: bool) -> dict[str, dg.RawMetadataValue]:
        """What was removed (or, in a dry run, would be): per kind, in total, and a table of the first items."""
        per_kind: dict[str, dg.RawMetadataValue] = {}
        for kind in KINDS:
            actions = self.by_kind(kind)
            per_kind[f"{kind}_items"] = len(actions)
            per_kind[f"{kind}_mb"] = round(sum(a.bytes for a in actions) / 2**20, 3)
        return {
            "dry_run": dry_run,
            "freed_mb": round(sum(a.bytes for a in self.actions) / 2**20, 3),
            **per_kind,
            "runs_kept": self.runs.kept if self.runs else 0,
            "runs_waiting_for_next_pass": bool(self.runs and self.runs.more),
            "errors": len(self.errors),
            "removed" if not dry_run else "would_remove": dg.MetadataValue.md(
                markdown(self.actions, self.now.timestamp())
            ),
            **({"error_list": dg.MetadataValue.md("\n".join(f"- {e}" for e in self.errors))} if self.errors else {}),
        }

    def summary(self, dry_run: bool) -> str:
        lines = [
            f"{'Would remove' if dry_run else 'Removed'} {len(self.actions)} item(s), {format_bytes(sum(a.bytes for a in self.actions))}:"
        ]
        for kind in KINDS:
            actions = self.by_kind(kind)
            if actions:
                verbs = ", ".join(sorted({a.verb for a in actions}))
                lines.append(f"  {kind}: {len(actions)} ({verbs}), {format_bytes(sum(a.bytes for a in actions))}")
        lines += [f"  error: {e}" for e in self.errors]
        return "\n".join(lines)


def plan_retention(settings: Settings, instance: dg.DagsterInstance, now: datetime) -> Plan:
    """What the settings remove now, kind by kind; nothing is touched."""
    retention, home = settings.retention, settings.home
    plan = Plan(now, [])
    cameras = CameraStore.from_settings(settings)
    library = VideoLibrary.from_settings(settings)
    finders: list[tuple[Keep, Callable[[], list[Action]]]] = [
        (
            retention.segments,
            lambda: segment_actions(cameras, PredictionStore.from_settings(settings).data(), home, now),
        ),
        (retention.logs, lambda: expired_log_candidates(settings.logs_dir, home, now)),
        (retention.sources, lambda: source_actions(library, instance, home, now)),
        (retention.predictions, lambda: prediction_actions(PredictionStore.from_settings(settings).data(), home)),
    ]
    for keep, find in finders:
        if not keep.forever:
            plan.actions += choose(_listed(plan, find), keep, now.timestamp())
    deleting = {a.what for a in plan.by_kind("logs")}
    rotations = _listed(plan, lambda: rotate_actions(settings.logs_dir, home, retention.log_rotate_bytes, now))
    plan.actions += [a for a in rotations if a.what not in deleting]
    state = read_json(settings.state_dir / STATE_FILE) or {}
    if retention.runs.days is not None:
        plan.runs = run_actions(
            instance, settings.dagster_home, state.get("runs", 0.0), now.timestamp() - retention.runs.days * DAY_S
        )
        plan.actions += plan.runs.actions
    if retention.compute_logs.days is not None:
        cutoff = now.timestamp() - retention.compute_logs.days * DAY_S
        plan.compute_logs = compute_log_actions(instance, state.get("compute_logs", 0.0), cutoff)
        removed_runs = {a.what for a in plan.by_kind("runs")}  # their logs go with them
        plan.actions += [a for a in plan.compute_logs.actions if a.what not in removed_runs]
    return plan


def carry_out(plan: Plan, settings: Settings, log: Callable[[str], None]) -> Plan:
    """Carry out every action of the plan; a failure is reported and the rest go on."""
    done = []
    for action in plan.actions:
        try:
            action.carry_out()
        except Exception as exc:
            plan.errors.append(f"{action.verb} {action.what}: {type(exc).__name__}: {exc}")
            log(f"retention: could not {action.verb} {action.what}: {exc}")
        else:
            done.append(action)
    plan.actions = done
    state_path = settings.state_dir / STATE_FILE
    state = read_json(state_path) or {}
    for name, scan in (("runs", plan.runs), ("compute_logs", plan.compute_logs)):
        if scan is not None:
            state[name] = scan.examined_until
    write_json(state_path, state)
    return plan


def _listed(plan: Plan, find: Callable[[], list[Action]]) -> list[Action]:
    """One kind's candidates; a kind that cannot be listed is reported, and the other kinds go on."""
    try:
        return find()
    except Exception as exc:
        plan.errors.append(f"listing: {type(exc).__name__}: {exc}")
        return []
