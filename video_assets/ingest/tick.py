"""One evaluation of the drop folders: which files are new, which are stable, what each one becomes.

Pure logic (no Dagster), so it is easy to test and to reason about. The cursor stays small however
many files the folders hold: files whose inode-change time (ctime) is below a watermark are known,
and only files that arrived after it (renames and copies both set ctime) are looked at in detail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from video_assets.ingest.files import DroppedFile
from video_assets.ingest.keys import HASH_CHARS, hash_of_key, video_key

# Files whose ctime is within this margin of the scan stay listed individually, so a file that
# appeared during a directory listing is never hidden behind the watermark.
WATERMARK_MARGIN_NS = 5_000_000_000
MAX_SETTLED_PER_TICK = 500
HASH_BUDGET_S = 20.0

Outcome = Literal["new", "known", "duplicate", "not_video"]


@dataclass
class DropCursor:
    """Serialized as the sensor cursor: a watermark plus the few files still in flight."""

    watermark_ns: int = 0
    pending: dict[str, list[int]] = field(default_factory=dict)  # file_id -> fingerprint last seen
    recent: dict[str, list[int]] = field(default_factory=dict)  # settled files above the watermark

    @classmethod
    def from_json(cls, text: str | None) -> DropCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(data.get("watermark_ns", 0), data.get("pending", {}), data.get("recent", {}))

    def to_json(self) -> str:
        return json.dumps(
            {"watermark_ns": self.watermark_ns, "pending": self.pending, "recent": self.recent},
            sort_keys=True,
            separators=(",", ":"),
        )

    def is_settled(self, dropped: DroppedFile) -> bool:
        """True once this exact version of the file has been decided on."""
        if dropped.file_id in self.pending:
            return False
        return dropped.ctime_ns <= self.watermark_ns or self.recent.get(dropped.file_id) == list(dropped.fingerprint)

    def needs_look(self, dropped: DroppedFile) -> bool:
        return dropped.file_id in self.pending or not self.is_settled(dropped)


@dataclass(frozen=True)
class Settlement:
    """The decision for one stable file."""

    file: DroppedFile
    outcome: Outcome
    key: str | None = None
    duplicate_of: str | None = None


@dataclass
class TickPlan:
    cursor: DropCursor
    settled: list[Settlement]
    waiting: list[DroppedFile]  # seen changing, or not yet seen twice
    deferred: list[DroppedFile]  # over this tick's budget; taken next tick

    @property
    def new_keys(self) -> list[str]:
        return [s.key for s in self.settled if s.outcome == "new" and s.key]

    @property
    def keys_to_run(self) -> list[Settlement]:
        return [s for s in self.settled if s.outcome in ("new", "known")]


def plan_tick(
    cursor: DropCursor,
    files: Iterable[DroppedFile],
    sha256: Callable[[DroppedFile], str],
    existing_keys: Callable[[], Iterable[str]],
    now_ns: int | None = None,
    max_settled: int = MAX_SETTLED_PER_TICK,
    hash_budget_s: float = HASH_BUDGET_S,
    quiet_ns: int | None = None,
) -> TickPlan:
    """Decide what this tick does. A file is taken once it was seen unchanged on two ticks, or at once
    if its inode has not changed for `quiet_ns` (every write changes ctime, and nothing can set it back:
    a folder of existing footage starts at the first tick)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    candidates = sorted((f for f in files if cursor.needs_look(f)), key=lambda f: (f.ctime_ns, f.file_id))
    started = time.monotonic()
    decide = _Decider(sha256, existing_keys)
    pending: dict[str, list[int]] = {}
    settled: list[Settlement] = []
    waiting: list[DroppedFile] = []
    deferred: list[DroppedFile] = []
    for dropped in candidates:
        fingerprint = list(dropped.fingerprint)
        quiet = quiet_ns is not None and now_ns - dropped.ctime_ns >= quiet_ns
        if cursor.pending.get(dropped.file_id) != fingerprint and not quiet:
            pending[dropped.file_id] = fingerprint
            waiting.append(dropped)
        elif len(settled) >= max_settled or time.monotonic() - started > hash_budget_s:
            pending[dropped.file_id] = fingerprint
            deferred.append(dropped)
        else:
            settled.append(decide(dropped))
    watermark = _next_watermark(cursor.watermark_ns, now_ns, [*waiting, *deferred])
    recent = {
        file_id: fp
        for file_id, fp in [*cursor.recent.items(), *((s.file.file_id, list(s.file.fingerprint)) for s in settled)]
        if fp[2] > watermark
    }
    return TickPlan(DropCursor(watermark, pending, recent), settled, waiting, deferred)


def _next_watermark(previous: int, now_ns: int, unsettled: list[DroppedFile]) -> int:
    """Advance to just before the oldest unsettled arrival (and never into the last few seconds)."""
    ceiling = now_ns - WATERMARK_MARGIN_NS
    if unsettled:
        ceiling = min(ceiling, min(f.ctime_ns for f in unsettled) - 1)
    return max(previous, ceiling)


class _Decider:
    """Classifies stable files; fetches the known partition keys at most once per tick."""

    def __init__(self, sha256: Callable[[DroppedFile], str], existing_keys: Callable[[], Iterable[str]]):
        self._sha256 = sha256
        self._existing_keys = existing_keys
        self._keys: set[str] | None = None
        self._key_by_hash: dict[str, str] = {}

    def __call__(self, dropped: DroppedFile) -> Settlement:
        if not dropped.is_video:
            return Settlement(dropped, "not_video")
        keys = self._load()
        key = video_key(dropped.relative_path, self._sha256(dropped))
        content_hash = key[-HASH_CHARS:]
        if key in keys:
            return Settlement(dropped, "known", key)
        if content_hash in self._key_by_hash:
            return Settlement(dropped, "duplicate", key, duplicate_of=self._key_by_hash[content_hash])
        keys.add(key)
        self._key_by_hash[content_hash] = key
        return Settlement(dropped, "new", key)

    def _load(self) -> set[str]:
        """The known keys, read from the instance at the first file that needs them."""
        if self._keys is None:
            self._keys = set(self._existing_keys())
            for key in sorted(self._keys):
                content_hash = hash_of_key(key)
                if content_hash:
                    self._key_by_hash.setdefault(content_hash, key)
        return self._keys
