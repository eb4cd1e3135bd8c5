"""The Warehouse resource: a DuckDB file that models are built in, and a published copy readers open.

DuckDB allows one writing process per file and no readers beside it, so the SQL models build into a
private file (one at a time: Dagster pool `duckdb`, plus a file lock for runs outside that pool) and
each finished build that changed it is copied and atomically renamed over `warehouse.duckdb`.
Readers open that copy read-only and never block, or get blocked by, a rebuild. The file holds only
the models' tables (the Parquet stays where it is), so the copy stays small as the history grows.

On many machines a build runs on whichever worker took it (one at a time: the `duckdb` pool is the
whole cluster's), so the published file lives in the object store: a build starts from it and
uploads what it published, and a reader fetches it. The views over the Parquet (`detections`, ...)
read the PredictionStore's files, there in the object store too: give `build` and `read` the store,
so that its filesystem is registered in the connection (DuckDB keeps that per connection, not in
the file).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from video_assets.settings import Settings
from video_assets.storage import Store, copy_file, store_at

PUBLISHED = "warehouse.duckdb"

if TYPE_CHECKING:
    from video_assets.predictions.store import PredictionStore


class WarehouseNotBuiltError(FileNotFoundError):
    """No model has been built yet."""


class Warehouse(dg.ConfigurableResource):
    path: str  # the published file: open it read-only
    build_path: str  # only SQL model assets write this one
    memory_limit: str = "1GB"  # DuckDB's buffers while building; beyond it, sorts and aggregates spill to disk
    store_url: str | None = None  # many machines: the object-store folder of the published file
    store_endpoint: str | None = None
    store_region: str = "us-east-1"

    @classmethod
    def from_settings(cls, settings: Settings) -> Warehouse:
        url, endpoint, region = settings.shared("warehouse")
        return cls(
            path=str(settings.warehouse_path),
            build_path=str(settings.warehouse_build_path),
            store_url=url if settings.cluster else None,
            store_endpoint=endpoint,
            store_region=region,
        )

    def _shared(self) -> Store | None:
        return store_at(self.store_url, self.store_endpoint, self.store_region) if self.store_url else None

    @contextmanager
    def build(self, store: PredictionStore | None = None) -> Iterator[Any]:
        """A read-write connection to the build file, reading `store`'s files; on success the result is published."""
        import duckdb

        build = Path(self.build_path)
        build.parent.mkdir(parents=True, exist_ok=True)
        with open(build.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # serializes writers even outside the Dagster pool
            shared = self._shared()
            if shared is not None and shared.exists(PUBLISHED):
                shared.fetch(PUBLISHED, build.parent / "shared")  # what the last build, anywhere, published
                os.replace(build.parent / "shared" / PUBLISHED, build)
            if not build.exists() and Path(self.path).exists():
                shutil.copyfile(self.path, build)  # keep models built before the build file was lost
            conn = duckdb.connect(str(build))
            conn.execute("SET TimeZone = 'UTC'")  # the models' hours and minutes are UTC, whatever the machine's zone
            conn.execute(f"SET memory_limit = '{self.memory_limit}'")
            try:
                if store is not None:
                    store.register(conn)
                yield conn
                conn.execute("CHECKPOINT")
            finally:
                conn.close()
            if self._publish(build) and shared is not None:
                shared.copy_in(Path(self.path), PUBLISHED)

    def read(self, store: PredictionStore | None = None) -> Any:
        """A read-only connection to the published file; with `store`, its views over the Parquet can be read."""
        import duckdb

        shared = self._shared()
        if shared is not None and shared.exists(PUBLISHED):
            fetched = shared.fetch(PUBLISHED, Path(self.path).parent / ".shared")
            os.replace(fetched, self.path)

        if not Path(self.path).exists():
            raise WarehouseNotBuiltError(
                f"{self.path} does not exist yet: run `video-assets process` (or materialize the sql group)."
            )
        conn = duckdb.connect(self.path, read_only=True)
        if store is not None:
            try:
                store.register(conn)
            except BaseException:
                conn.close()
                raise
        return conn

    def _publish(self, build: Path) -> bool:
        """Copy the build over the published file, unless the published copy is newer than the build's last
        change (a build that changed nothing leaves the file untouched: nothing to copy). Whether it copied."""
        published = Path(self.path)
        if published.exists() and published.stat().st_mtime_ns > build.stat().st_mtime_ns:
            return False
        copy_file(build, published)
        return True
