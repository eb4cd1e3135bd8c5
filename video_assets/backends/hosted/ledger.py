"""The hosted job ledger: a small database (SQLite here, Postgres on many machines) that makes sure no
video is paid for twice.

One row per (API URL, video sha256, target, fps). Its state moves
`uploaded` -> `submitting` -> `submitted` -> `done` | `failed`, and every change is committed
before the next network call: the row says `submitting` *before* the job is posted and holds the
job id *before* polling starts, so a crash, a kill -9 or a retry finds the job again instead of
submitting a new one. Every submission is also appended to `submissions`, which the budget reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from video_assets.backends.ledger_db import BudgetExceeded, LedgerDatabase, this_process

__all__ = ["BudgetExceeded", "JobKey", "JobLedger", "JobRow", "this_process"]

NAME = "hosted_jobs"
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    api_url TEXT NOT NULL, sha256 TEXT NOT NULL, target TEXT NOT NULL, fps INTEGER NOT NULL,
    video_id TEXT NOT NULL, state TEXT NOT NULL, video_url TEXT, upload_url TEXT, uploaded_at TEXT,
    job_id TEXT, frames_estimate INTEGER, submitted_at TEXT, submitted_by TEXT, message TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (api_url, sha256, target, fps)
);
CREATE TABLE IF NOT EXISTS submissions (
    api_url TEXT NOT NULL, sha256 TEXT NOT NULL, target TEXT NOT NULL, fps INTEGER NOT NULL,
    video_id TEXT NOT NULL, frames_estimate INTEGER NOT NULL, started_at TEXT NOT NULL,
    submitted_by TEXT NOT NULL, job_id TEXT, seq {serial}
);
"""


@dataclass(frozen=True)
class JobKey:
    api_url: str
    sha256: str
    target: str
    fps: int

    def describe(self) -> str:
        return f"sha256 {self.sha256[:12]}…, {self.target}, {self.fps} fps, {self.api_url}"


@dataclass(frozen=True)
class JobRow:
    key: JobKey
    video_id: str
    state: str  # uploaded | submitting | submitted | done | failed
    video_url: str | None
    upload_url: str | None
    uploaded_at: str | None
    job_id: str | None
    frames_estimate: int | None
    submitted_at: str | None
    submitted_by: str | None
    message: str | None


class JobLedger:
    """Every method is one transaction of `db` (opened with NAME and SCHEMA)."""

    def __init__(self, db: LedgerDatabase):
        self.db = db

    def get(self, key: JobKey) -> JobRow | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE " + _WHERE, _key_args(key)).fetchone()
        return _row(row) if row else None

    def record_upload(self, key: JobKey, video_id: str, video_url: str, upload_url: str) -> None:
        now = _now()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO jobs (api_url, sha256, target, fps, video_id, state, video_url, upload_url, uploaded_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, 'uploaded', ?, ?, ?, ?)"
                " ON CONFLICT (api_url, sha256, target, fps) DO UPDATE SET video_id=excluded.video_id, state='uploaded', video_url=excluded.video_url,"
                " upload_url=excluded.upload_url, uploaded_at=excluded.uploaded_at, job_id=NULL, message=NULL,"
                " updated_at=excluded.updated_at",
                (*_key_args(key), video_id, video_url, upload_url, now, now),
            )

    def reserve_submission(self, key: JobKey, frames: int, submitted_by: str, budget_frames: int | None) -> None:
        """Mark the row `submitting` (it must be `uploaded`), checking the budget in the same transaction."""
        now = _now()
        with self.db.transaction() as conn:
            if budget_frames is not None:
                used = conn.execute(
                    "SELECT CAST(COALESCE(SUM(frames_estimate), 0) AS BIGINT) FROM submissions"
                ).fetchone()[0]
                if used + frames > budget_frames:
                    raise BudgetExceeded(used, frames, budget_frames)
            changed = conn.execute(
                "UPDATE jobs SET state='submitting', frames_estimate=?, submitted_at=?, submitted_by=?, job_id=NULL,"
                " message=NULL, updated_at=? WHERE state='uploaded' AND " + _WHERE,
                (frames, now, submitted_by, now, *_key_args(key)),
            ).rowcount
            if changed != 1:
                raise RuntimeError(f"ledger row for {key.describe()} is not in state 'uploaded'")
            video_id = conn.execute("SELECT video_id FROM jobs WHERE " + _WHERE, _key_args(key)).fetchone()[0]
            conn.execute(
                "INSERT INTO submissions (api_url, sha256, target, fps, video_id, frames_estimate, started_at, submitted_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*_key_args(key), video_id, frames, now, submitted_by),
            )

    def record_job(self, key: JobKey, job_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state='submitted', job_id=?, updated_at=? WHERE " + _WHERE,
                (job_id, _now(), *_key_args(key)),
            )
            conn.execute(
                "UPDATE submissions SET job_id=? WHERE job_id IS NULL AND " + _WHERE,
                (job_id, *_key_args(key)),
            )

    def record_rejected_submission(self, key: JobKey, message: str) -> None:
        """The server refused the job (4xx): nothing was created, so the video may be submitted again."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state='uploaded', message=?, updated_at=? WHERE " + _WHERE,
                (message, _now(), *_key_args(key)),
            )
            conn.execute("DELETE FROM submissions WHERE job_id IS NULL AND " + _WHERE, _key_args(key))

    def reopen(self, key: JobKey) -> None:
        """force_resubmit: set the recorded job aside (it stays in `submissions`) so the video is submitted again."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state='uploaded', job_id=NULL, message=NULL, submitted_by=NULL, updated_at=? WHERE "
                + _WHERE,
                (_now(), *_key_args(key)),
            )

    def record_message(self, key: JobKey, message: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE jobs SET message=?, updated_at=? WHERE " + _WHERE, (message, _now(), *_key_args(key)))

    def record_outcome(self, key: JobKey, state: str, message: str = "") -> None:
        assert state in ("done", "failed")
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state=?, message=?, updated_at=? WHERE " + _WHERE,
                (state, message, _now(), *_key_args(key)),
            )

    def submitted_frames(self) -> int:
        with self.db.read() as conn:
            return conn.execute("SELECT CAST(COALESCE(SUM(frames_estimate), 0) AS BIGINT) FROM submissions").fetchone()[
                0
            ]

    def submissions(self, key: JobKey) -> list[str | None]:
        """Job ids of every submission for this key, oldest first (None: outcome unknown)."""
        with self.db.read() as conn:
            order = self.db.insertion_order
            rows = conn.execute(f"SELECT job_id FROM submissions WHERE {_WHERE} ORDER BY {order}", _key_args(key))
            return [r[0] for r in rows]


_WHERE = "api_url=? AND sha256=? AND target=? AND fps=?"


def _key_args(key: JobKey) -> tuple:
    return (key.api_url, key.sha256, key.target, key.fps)


def _row(row: Any) -> JobRow:
    key = JobKey(row["api_url"], row["sha256"], row["target"], row["fps"])
    fields = {name: row[name] for name in JobRow.__dataclass_fields__ if name != "key"}
    return JobRow(key=key, **fields)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
