"""The instance's storage on Postgres (many machines), which keeps its connections in the run workers.

Outside the webserver, dagster-postgres opens a new connection for every query (SQLAlchemy's NullPool):
a short clip's run makes dozens, each a TCP connection and a SCRAM login at PgBouncer, and py-spy found a
quarter of such a run's time on a worker machine in `psycopg2.connect`. In a run worker this storage is
configured as the webserver configures its own (`optimize_for_webserver`: a connection kept per storage,
more while several threads query at once); the worker frees each run's instance, and so its connections,
when the run ends (runtime/worker.py).

Other processes (the daemon, the code server) keep dagster-postgres's behaviour: the code server makes an
instance for every sensor tick, which only Python's cycle collector frees, so kept connections would pile up.
"""

from __future__ import annotations

from typing import Any

from dagster_postgres import DagsterPostgresStorage

POOL_RECYCLE_S = 3600  # as the webserver: a kept connection is replaced after an hour
POOL_MAX_OVERFLOW = 20  # as the webserver: connections beyond the kept one, closed when returned
NO_STATEMENT_TIMEOUT = 0  # as dagster-postgres's own connections outside the webserver

_keep_connections = False


def keep_connections() -> None:
    """From now on, instances this process opens keep their Postgres connections until they are freed."""
    global _keep_connections
    _keep_connections = True


class PostgresStorage(DagsterPostgresStorage):
    """`storage: custom:` in dagster.yaml, with the config of `storage: postgres:`."""

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> Any:
        """dagster-postgres's own storage (its constructor names its class), its connections kept or not."""
        storage = super().from_config_value(inst_data, config_value)
        if _keep_connections:
            for part in (storage.run_storage, storage.event_log_storage, storage.schedule_storage):
                part.optimize_for_webserver(NO_STATEMENT_TIMEOUT, POOL_RECYCLE_S, POOL_MAX_OVERFLOW)
        return storage
