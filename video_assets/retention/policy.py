"""What retention may remove, and the one rule that picks it: too old, or the oldest beyond a byte budget.

Each kind of data (segments.py, logs.py, runs.py, sources.py, predictions.py) lists its candidates as
`Action`s: what would happen to what, how many bytes that frees, and how old it is. `choose` applies
a `Keep` (VIDEO_ASSETS_KEEP_<KIND>) to them; the `retention` job then carries the chosen actions out,
or, in a dry run, only reports them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from video_assets.settings import Keep

DAY_S = 24 * 3600.0


@dataclass(frozen=True)
class Action:
    kind: str  # segments | logs | runs | compute_logs | sources | predictions
    verb: str  # delete | move | rotate
    what: str  # a path relative to VIDEO_ASSETS_HOME (or absolute), or a run id
    bytes: int  # freed on this filesystem (a move within a drop folder frees nothing there, but is counted)
    at: float  # when it was last written, processed or finished (epoch seconds): its age
    carry_out: Callable[[], None] = field(compare=False, repr=False)


def choose(candidates: Iterable[Action], keep: Keep, now: float) -> list[Action]:
    """Those older than `keep.days`, then the oldest of the rest until they fit in `keep.bytes`."""
    if keep.forever:
        return []
    ordered = sorted(candidates, key=lambda a: a.at)
    cutoff = now - keep.days * DAY_S if keep.days is not None else float("-inf")
    chosen = [a for a in ordered if a.at < cutoff]
    rest = [a for a in ordered if a.at >= cutoff]
    if keep.bytes is not None:
        excess = sum(a.bytes for a in rest) - keep.bytes
        for action in rest:
            if excess <= 0:
                break
            chosen.append(action)
            excess -= action.bytes
    return chosen


def tree_bytes(path: Path) -> int:
    """Bytes of a file, or of every file below a folder (0 if it is gone)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def shown(uri: str, home: Path) -> str:
    """A store's place in the report: a local folder relative to VIDEO_ASSETS_HOME, an s3:// uri as it is."""
    return uri if "://" in uri else relative(Path(uri), home)


def relative(path: Path, home: Path) -> str:
    """How a path is shown in the report: relative to VIDEO_ASSETS_HOME when it is inside it."""
    try:
        return str(path.relative_to(home))
    except ValueError:
        return str(path)


def markdown(actions: Sequence[Action], now: float, limit: int = 100) -> str:
    """The first `limit` actions as a table, for the run's metadata."""
    if not actions:
        return "Nothing to remove."
    lines = ["| kind | action | what | MB | age (days) |", "|---|---|---|---|---|"]
    for action in actions[:limit]:
        age = (now - action.at) / DAY_S
        lines.append(f"| {action.kind} | {action.verb} | {action.what} | {action.bytes / 2**20:.2f} | {age:.1f} |")
    if len(actions) > limit:
        lines.append(f"| … | | {len(actions) - limit} more | | |")
    return "\n".join(lines)
