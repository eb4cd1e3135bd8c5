"""The Warehouse resource: the DuckDB file the SQL models build, and how to open it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg


class Warehouse(dg.ConfigurableResource):
    """One DuckDB file. Only the SQL model assets write it (pool `duckdb`, one at a time)."""

    path: str

    def connect(self, read_only: bool = False) -> Any:
        import duckdb

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(self.path, read_only=read_only)
