"""The batch ledger: how concurrent runs share staging batches and jobs, and why no video is paid for twice.

One row per video, keyed on *content* (sha256) under one job spec (API URL, workspace, workflow, fps),
and one row per group: a staging batch and the job that processes it, whose ids are chosen when the
group opens. A video belongs to exactly one group; it moves to another only while nothing was submitted
for it (`dropped`, `refused`) or when a person forces it (`force_resubmit`).

    video:  waiting -> staged -> exported | missing            (dropped, refused: may join a new group)
    group:  open -> closed -> submitting -> submitted -> done | failed     (refused, empty: nothing billed)

A group is open to new videos until its window ends or it is full. Then one member run at a time holds
its lease and drives it: uploads every member, records `submitting` (and the frames, for the budget)
*before* it posts the job, and `submitted` after. Because the job id is fixed when the group opens, a
driver that finds `submitting` (the last one died, or the answer was lost) asks the service whether that
job exists instead of creating another. Any member run may poll the job, at most once per interval
across all of them (`claim_poll`); every run reads the outcome here.

`BatchLedger` is the interface the backend uses; every method is one transaction. `SqlBatchLedger`
implements it on a ledger database: SQLite on one machine, the cluster's Postgres on many (see
backends/ledger_db.py), so runs on several machines share groups the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from video_assets.backends.batch.contract import new_batch_id, new_job_id
from video_assets.backends.ledger_db import BudgetExceeded, Connection, LedgerDatabase

REJOINABLE = ("dropped", "refused")  # nothing was submitted for the video: it may join a new group
DRIVEN = ("open", "closed", "submitting")  # a member run with the lease moves the group on

NAME = "batch_jobs"
SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    group_id TEXT PRIMARY KEY, job_id TEXT NOT NULL UNIQUE, spec TEXT NOT NULL, settings TEXT NOT NULL,
    state TEXT NOT NULL, capacity INTEGER NOT NULL, opened_at {float} NOT NULL, closes_at {float} NOT NULL,
    lease_owner TEXT, lease_expires {float}, frames_estimate INTEGER, submitted_at TEXT, submitted_by TEXT,
    stage TEXT, message TEXT, polled_at {float}, results_batch TEXT, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS videos (
    spec TEXT NOT NULL, sha256 TEXT NOT NULL, video_id TEXT NOT NULL, path TEXT NOT NULL, file_name TEXT NOT NULL,
    frames_estimate INTEGER NOT NULL, group_id TEXT, state TEXT NOT NULL, joined_at {float} NOT NULL,
    message TEXT, forced_by TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY (spec, sha256)
);
CREATE TABLE IF NOT EXISTS submissions (
    group_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, frames_estimate INTEGER NOT NULL,
    started_at TEXT NOT NULL, submitted_by TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class JoinRequest:
    spec: str  # api URL | workspace | workflow | fps: videos share a job only under the same spec
    sha256: str
    video_id: str
    path: str
    file_name: str  # its name in the staging batch; it marks the video's files in the results
    frames: int  # spend estimate of this video
    settings: str  # JobSettings JSON, kept by a group this video opens
    window_s: float
    capacity: int
    budget_frames: int | None


@dataclass(frozen=True)
class Member:
    spec: str
    sha256: str
    video_id: str
    path: str
    file_name: str
    frames_estimate: int
    group_id: str | None
    state: str
    joined_at: float
    message: str | None
    forced_by: str | None


@dataclass(frozen=True)
class Group:
    group_id: str  # = the staging batch id
    job_id: str
    spec: str
    settings: str
    state: str
    capacity: int
    opened_at: float
    closes_at: float
    lease_owner: str | None
    lease_expires: float | None
    frames_estimate: int | None
    submitted_at: str | None
    submitted_by: str | None
    stage: str | None
    message: str | None
    polled_at: float | None
    results_batch: str | None


class LeaseLost(Exception):
    """Another member run drives the group now (this one went silent for longer than the lease)."""


class BatchLedger(ABC):
    """What runs agree on. Times are seconds since the epoch, given by the caller."""

    @abstractmethod
    def member(self, spec: str, sha256: str) -> Member | None: ...

    @abstractmethod
    def join(self, request: JoinRequest, now: float) -> Member:
        """The video's row; a new (or rejoining) video joins an open group of its spec, or opens one.
        Raises BudgetExceeded when its frames would take submitted and reserved frames above the budget."""

    @abstractmethod
    def group(self, group_id: str) -> Group: ...

    @abstractmethod
    def members(self, group_id: str) -> list[Member]:
        """In the order they joined."""

    @abstractmethod
    def lead(self, group_id: str, owner: str, now: float, lease_s: float) -> Group | None:
        """Take (or keep) the lease of a group that is due to be driven: open past its window or full,
        closed, or submitting. An open group is closed in the same transaction. None: not due, or leased."""

    @abstractmethod
    def renew(self, group_id: str, owner: str, now: float, lease_s: float) -> bool: ...

    @abstractmethod
    def mark_staged(self, group_id: str, sha256: str) -> None: ...

    @abstractmethod
    def drop(self, group_id: str, sha256: str, message: str) -> None:
        """Take a member out of a group not yet submitted: it may join another one later."""

    @abstractmethod
    def begin_submission(self, group_id: str, owner: str) -> Group | None:
        """closed -> submitting for the lease owner, recording the staged members' frames; committed before
        the job is posted. None when the group has no staged member left (it becomes `empty`); LeaseLost
        when `owner` no longer holds the lease."""

    @abstractmethod
    def record_submitted(self, group_id: str) -> None: ...

    @abstractmethod
    def record_refused(self, group_id: str, message: str) -> None:
        """The service refused the job outright: nothing was created, its members may join a new group."""

    @abstractmethod
    def claim_poll(self, group_id: str, now: float, interval_s: float) -> bool:
        """True for one caller per interval: that one polls the job, the others read what it records."""

    @abstractmethod
    def record_status(
        self, group_id: str, state: str, stage: str | None, message: str, results_batch: str | None
    ) -> None:
        """running -> submitted, succeeded -> done, failed -> failed (a restarted job may come back)."""

    @abstractmethod
    def record_outcome(self, group_id: str, sha256: str, state: str, message: str = "") -> None:
        """exported | missing, for a member of a finished group."""

    @abstractmethod
    def set_aside(self, spec: str, sha256: str, owner: str) -> None:
        """force_resubmit: the video leaves its submitted group and may join a new one (which pays again)."""

    @abstractmethod
    def submitted_frames(self) -> int: ...


class SqlBatchLedger(BatchLedger):
    """On a ledger database opened with NAME and SCHEMA."""

    def __init__(self, db: LedgerDatabase):
        self.db = db

    def member(self, spec: str, sha256: str) -> Member | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM videos WHERE spec=? AND sha256=?", (spec, sha256)).fetchone()
        return _member(row) if row else None

    def join(self, request: JoinRequest, now: float) -> Member:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM videos WHERE spec=? AND sha256=?", (request.spec, request.sha256)
            ).fetchone()
            if row and row["state"] not in REJOINABLE:
                return _member(row)
            if request.budget_frames is not None:
                used = _committed_frames(conn)
                if used + request.frames > request.budget_frames:
                    raise BudgetExceeded(used, request.frames, request.budget_frames)
            group_id = self._open_group(conn, request, now)
            conn.execute(
                "INSERT INTO videos (spec, sha256, video_id, path, file_name, frames_estimate, group_id, state, joined_at,"
                " message, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'waiting', ?, NULL, ?)"
                " ON CONFLICT (spec, sha256) DO UPDATE SET video_id=excluded.video_id, path=excluded.path, file_name=excluded.file_name,"
                " frames_estimate=excluded.frames_estimate, group_id=excluded.group_id, state='waiting',"
                " joined_at=excluded.joined_at, message=NULL, updated_at=excluded.updated_at",
                (
                    request.spec,
                    request.sha256,
                    request.video_id,
                    request.path,
                    request.file_name,
                    request.frames,
                    group_id,
                    now,
                    _stamp(),
                ),
            )
            return _member(
                conn.execute(
                    "SELECT * FROM videos WHERE spec=? AND sha256=?", (request.spec, request.sha256)
                ).fetchone()
            )

    def _open_group(self, conn: Connection, request: JoinRequest, now: float) -> str:
        found = conn.execute(
            "SELECT g.group_id FROM groups g WHERE g.spec=? AND g.state='open' AND g.closes_at>?"
            " AND (SELECT COUNT(*) FROM videos v WHERE v.group_id=g.group_id) < g.capacity ORDER BY g.opened_at LIMIT 1",
            (request.spec, now),
        ).fetchone()
        if found:
            return found[0]
        group_id = new_batch_id(datetime.fromtimestamp(now, UTC))
        conn.execute(
            "INSERT INTO groups (group_id, job_id, spec, settings, state, capacity, opened_at, closes_at, updated_at)"
            " VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?)",
            (
                group_id,
                new_job_id(),
                request.spec,
                request.settings,
                request.capacity,
                now,
                now + request.window_s,
                _stamp(),
            ),
        )
        return group_id

    def group(self, group_id: str) -> Group:
        with self.db.read() as conn:
            return _group(conn.execute("SELECT * FROM groups WHERE group_id=?", (group_id,)).fetchone())

    def members(self, group_id: str) -> list[Member]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM videos WHERE group_id=? ORDER BY joined_at, sha256", (group_id,)
            ).fetchall()
        return [_member(r) for r in rows]

    def lead(self, group_id: str, owner: str, now: float, lease_s: float) -> Group | None:
        with self.db.transaction() as conn:
            group = _group(conn.execute("SELECT * FROM groups WHERE group_id=?", (group_id,)).fetchone())
            if group.state not in DRIVEN:
                return None
            if group.lease_owner not in (None, owner) and (group.lease_expires or 0) > now:
                return None
            if group.state == "open":
                count = conn.execute("SELECT COUNT(*) FROM videos WHERE group_id=?", (group_id,)).fetchone()[0]
                if now < group.closes_at and count < group.capacity:
                    return None
            conn.execute(
                "UPDATE groups SET state=CASE state WHEN 'open' THEN 'closed' ELSE state END, lease_owner=?,"
                " lease_expires=?, updated_at=? WHERE group_id=?",
                (owner, now + lease_s, _stamp(), group_id),
            )
            return _group(conn.execute("SELECT * FROM groups WHERE group_id=?", (group_id,)).fetchone())

    def renew(self, group_id: str, owner: str, now: float, lease_s: float) -> bool:
        with self.db.transaction() as conn:
            return (
                conn.execute(
                    "UPDATE groups SET lease_expires=?, updated_at=? WHERE group_id=? AND lease_owner=?",
                    (now + lease_s, _stamp(), group_id, owner),
                ).rowcount
                == 1
            )

    def mark_staged(self, group_id: str, sha256: str) -> None:
        self._update_member(group_id, sha256, "state='staged', message=NULL")

    def drop(self, group_id: str, sha256: str, message: str) -> None:
        self._update_member(group_id, sha256, "state='dropped', message=?", message)

    def begin_submission(self, group_id: str, owner: str) -> Group | None:
        with self.db.transaction() as conn:
            group = _group(conn.execute("SELECT * FROM groups WHERE group_id=?", (group_id,)).fetchone())
            if group.state != "closed" or group.lease_owner != owner:
                raise LeaseLost(f"group {group_id} is {group.state}, leased by {group.lease_owner}")
            frames, staged = conn.execute(
                "SELECT CAST(COALESCE(SUM(frames_estimate), 0) AS BIGINT), COUNT(*) FROM videos WHERE group_id=? AND state='staged'",
                (group_id,),
            ).fetchone()
            if staged == 0:
                conn.execute(
                    "UPDATE groups SET state='empty', lease_owner=NULL, updated_at=? WHERE group_id=?",
                    (_stamp(), group_id),
                )
                return None
            now = _stamp()
            conn.execute(
                "UPDATE groups SET state='submitting', frames_estimate=?, submitted_at=?, submitted_by=?, updated_at=?"
                " WHERE group_id=?",
                (frames, now, owner, now, group_id),
            )
            conn.execute(
                "INSERT INTO submissions (group_id, job_id, frames_estimate, started_at, submitted_by) VALUES (?, ?, ?, ?, ?)",
                (group_id, group.job_id, frames, now, owner),
            )
            return _group(conn.execute("SELECT * FROM groups WHERE group_id=?", (group_id,)).fetchone())

    def record_submitted(self, group_id: str) -> None:
        self._update_group(group_id, "state='submitted', lease_owner=NULL, message=NULL", "state='submitting'")

    def record_refused(self, group_id: str, message: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE groups SET state='refused', lease_owner=NULL, message=?, updated_at=? WHERE group_id=?",
                (message, _stamp(), group_id),
            )
            conn.execute(
                "UPDATE videos SET state='refused', message=?, updated_at=? WHERE group_id=? AND state='staged'",
                (message, _stamp(), group_id),
            )
            conn.execute("DELETE FROM submissions WHERE group_id=?", (group_id,))

    def claim_poll(self, group_id: str, now: float, interval_s: float) -> bool:
        with self.db.transaction() as conn:
            return (
                conn.execute(
                    "UPDATE groups SET polled_at=? WHERE group_id=? AND (polled_at IS NULL OR polled_at<=?)",
                    (now, group_id, now - interval_s),
                ).rowcount
                == 1
            )

    def record_status(
        self, group_id: str, state: str, stage: str | None, message: str, results_batch: str | None
    ) -> None:
        group_state = {"running": "submitted", "succeeded": "done", "failed": "failed"}[state]
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE groups SET state=?, stage=?, message=?, results_batch=COALESCE(?, results_batch), updated_at=?"
                " WHERE group_id=? AND state IN ('submitted', 'done', 'failed')",
                (group_state, stage, message, results_batch, _stamp(), group_id),
            )

    def record_outcome(self, group_id: str, sha256: str, state: str, message: str = "") -> None:
        assert state in ("exported", "missing")
        self._update_member(group_id, sha256, "state=?, message=?", state, message or None)

    def set_aside(self, spec: str, sha256: str, owner: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE videos SET state='dropped', forced_by=?, message='set aside by force_resubmit', updated_at=?"
                " WHERE spec=? AND sha256=?",
                (owner, _stamp(), spec, sha256),
            )

    def submitted_frames(self) -> int:
        with self.db.read() as conn:
            return conn.execute("SELECT CAST(COALESCE(SUM(frames_estimate), 0) AS BIGINT) FROM submissions").fetchone()[
                0
            ]

    # Plumbing ------------------------------------------------------------------------------------

    def _update_member(self, group_id: str, sha256: str, assignments: str, *values: object) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                f"UPDATE videos SET {assignments}, updated_at=? WHERE group_id=? AND sha256=?",
                (*values, _stamp(), group_id, sha256),
            )

    def _update_group(self, group_id: str, assignments: str, condition: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                f"UPDATE groups SET {assignments}, updated_at=? WHERE group_id=? AND {condition}", (_stamp(), group_id)
            )


def _committed_frames(conn: Connection) -> int:
    """Frames already submitted, plus those of videos waiting in groups not yet submitted."""
    submitted = conn.execute("SELECT CAST(COALESCE(SUM(frames_estimate), 0) AS BIGINT) FROM submissions").fetchone()[0]
    reserved = conn.execute(
        "SELECT CAST(COALESCE(SUM(v.frames_estimate), 0) AS BIGINT) FROM videos v JOIN groups g ON g.group_id=v.group_id"
        " WHERE g.state IN ('open', 'closed') AND v.state IN ('waiting', 'staged')"
    ).fetchone()[0]
    return submitted + reserved


def _member(row: Any) -> Member:
    return Member(**{name: row[name] for name in Member.__dataclass_fields__})


def _group(row: Any) -> Group:
    return Group(**{name: row[name] for name in Group.__dataclass_fields__})


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
