"""The Warehouse resource: a DuckDB file that models are built in, and a published copy readers open.

DuckDB allows one writing process per file and no readers beside it, so the SQL models build into a
private file (one at a time: Dagster pool `duckdb`, plus a file lock for runs outside that pool) and
each finished build that changed it is copied and atomically renamed over `warehouse.duckdb`.
Readers open that copy read-only and never block, or get blocked by, a rebuild. The file holds only
the models' tables (the Parquet stays where it is), so the copy stays small as the history grows.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg

from video_assets.storage import copy_file


class WarehouseNotBuiltError(FileNotFoundError):
    """No model has been built yet."""


class Warehouse(dg.ConfigurableResource):
    path: str  # the published file: open it read-only
    build_path: str  # only SQL model assets write this one
    memory_limit: str = "1GB"  # DuckDB's buffers while building; beyond it, sorts and aggregates spill to disk

    @contextmanager
    def build(self) -> Iterator[Any]:
        """A read-write connection to the build file; on success the result is published."""
        import duckdb

        build = Path(self.build_path)
        build.parent.mkdir(parents=True, exist_ok=True)
        with open(build.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # serializes writers even outside the Dagster pool
            if not build.exists() and Path(self.path).exists():
                shutil.copyfile(self.path, build)  # keep models built before the build file was lost
            conn = duckdb.connect(str(build))
            conn.execute("SET TimeZone = 'UTC'")  # the models' hours and minutes are UTC, whatever the machine's zone
            conn.execute(f"SET memory_limit = '{self.memory_limit}'")
            try:
                yield conn
                conn.execute("CHECKPOINT")
            finally:
                conn.close()
            self._publish(build)

    def read(self) -> Any:
        import duckdb

        if not Path(self.path).exists():
            raise WarehouseNotBuiltError(
                f"{self.path} does not exist yet: run `video-assets process` (or materialize the sql group)."
            )
        return duckdb.connect(self.path, read_only=True)

    def _publish(self, build: Path) -> None:
        """Copy the build over the published file, unless the published copy is newer than the build's last
        change (a build that changed nothing leaves the file untouched: nothing to copy)."""
        published = Path(self.path)
        if published.exists() and published.stat().st_mtime_ns > build.stat().st_mtime_ns:
            return
        copy_file(build, published)
