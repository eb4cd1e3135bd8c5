"""What the job ledgers (hosted, batch) stand on: one SQLite file in which every change is one committed
transaction, so that a crash, a kill -9 or a concurrent run never sees half a change."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path


class BudgetExceeded(Exception):
    """A submission would take the frames submitted so far above the configured budget."""

    def __init__(self, used: int, asked: int, budget: int):
        super().__init__(used, asked, budget)
        self.used, self.asked, self.budget = used, asked, budget


class SqliteLedger:
    def __init__(self, path: Path, schema: str):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as conn:
            conn.executescript(schema)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: writers queue up (for up to 30 s), and what a transaction read stays true until it commits."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()


def this_process() -> str:
    """Who reserved a submission when no Dagster run id is at hand."""
    return f"{os.uname().nodename}:pid {os.getpid()}"
