"""What the job ledgers (hosted, batch) stand on: a database in which every change is one serialized,
committed transaction, so that a crash, a kill -9 or a concurrent run never sees half a change.

On one machine the database is a SQLite file under VIDEO_ASSETS_HOME/state (BEGIN IMMEDIATE queues
writers); on many machines it is the cluster's Postgres (a transaction-scoped advisory lock per ledger
queues writers the same way), so "never pay twice" holds whichever machine a retry lands on. The
ledgers write one SQL dialect: `?` placeholders, `{float}` and `{serial}` in their schema.
"""

from __future__ import annotations

import os
import sqlite3
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any


class BudgetExceeded(Exception):
    """A submission would take the frames submitted so far above the configured budget."""

    def __init__(self, used: int, asked: int, budget: int):
        super().__init__(used, asked, budget)
        self.used, self.asked, self.budget = used, asked, budget


class Rows:
    """A query's result: rows that read by column name or position, and how many rows a change touched."""

    def __init__(self, cursor: Any):
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class Connection(ABC):
    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...


class LedgerDatabase(ABC):
    """One ledger's tables (`name` keeps ledgers apart)."""

    def __init__(self, name: str, schema: str):
        self.name = name
        with self.transaction() as conn:
            for statement in filter(str.strip, self.dialect(schema).split(";")):
                conn.execute(statement)

    insertion_order = "seq"  # what `ORDER BY` takes for "oldest first" (a `seq {serial}` column)

    @abstractmethod
    def dialect(self, schema: str) -> str:
        """The schema with its column types filled in."""

    @abstractmethod
    def transaction(self) -> Any:
        """A context manager: one committed transaction; writers of this ledger wait for each other."""

    @abstractmethod
    def read(self) -> Any:
        """A context manager: a connection for reads (no lock)."""


class SqliteDatabase(LedgerDatabase):
    insertion_order = "rowid"  # files written before `seq` existed have rowid too

    def __init__(self, path: Path, name: str, schema: str):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(name, schema)

    def dialect(self, schema: str) -> str:
        return schema.format(float="REAL", serial="INTEGER")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """BEGIN IMMEDIATE: writers queue up (for up to 30 s), and what a transaction read stays true until it commits."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteConnection(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with closing(self._connect()) as conn:
            yield _SqliteConnection(conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=FULL")
        return conn


class _SqliteConnection(Connection):
    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return Rows(self._conn.execute(sql, tuple(params)))


class PostgresDatabase(LedgerDatabase):
    """`dsn`: a libpq connection string or URL (with the password, read from the environment by the caller)."""

    def __init__(self, dsn: str, name: str, schema: str):
        self.dsn = dsn
        self._lock_key = zlib.crc32(f"video-assets ledger {name}".encode())
        super().__init__(name, schema)

    def dialect(self, schema: str) -> str:
        return schema.format(float="DOUBLE PRECISION", serial="BIGSERIAL PRIMARY KEY")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._connect() as conn:  # psycopg2: commits on success, rolls back on an exception
            wrapped = _PostgresConnection(conn)
            wrapped.execute("SELECT pg_advisory_xact_lock(?)", (self._lock_key,))
            yield wrapped

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._connect() as conn:
            yield _PostgresConnection(conn)

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        import psycopg2

        conn = psycopg2.connect(self.dsn, connect_timeout=10)
        try:
            with conn:
                yield conn
        finally:
            conn.close()


class _PostgresConnection(Connection):
    def __init__(self, conn: Any):
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        from psycopg2.extras import DictCursor

        cursor = self._conn.cursor(cursor_factory=DictCursor)
        cursor.execute(sql.replace("?", "%s"), tuple(params))
        return Rows(cursor)


def this_process() -> str:
    """Who reserved a submission when no Dagster run id is at hand."""
    return f"{os.uname().nodename}:pid {os.getpid()}"
