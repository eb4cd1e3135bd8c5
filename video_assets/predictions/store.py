"""The PredictionStore resource: where the Parquet tables live and how readers find them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import pyarrow as pa

from video_assets.backends.base import BackendIdentity
from video_assets.ingest.probe import VideoProbe
from video_assets.predictions.schema import CAMERA_TABLES, DERIVED_TABLES, TABLES
from video_assets.predictions.writer import PredictionWriter
from video_assets.storage import table_file

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "int32": "INTEGER",
    "double": "DOUBLE",
    "float": "FLOAT",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
}
SCHEMAS = {**TABLES, **DERIVED_TABLES, **CAMERA_TABLES}


def duckdb_type(kind: pa.DataType) -> str:
    """The DuckDB type a Parquet column of this Arrow type reads as."""
    if pa.types.is_list(kind):
        return f"{duckdb_type(kind.value_type)}[]"
    if pa.types.is_struct(kind):
        return "STRUCT(" + ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in kind) + ")"
    return _DUCKDB_TYPES[str(kind)]


class PredictionStore(dg.ConfigurableResource):
    """Hive-style Parquet: <root>/<table>/video_id=<key>/part-0.parquet."""

    root: str

    def writer(
        self, video: VideoProbe, identity: BackendIdentity, frames_expected: int | None = None
    ) -> PredictionWriter:
        return PredictionWriter(Path(self.root), video, identity, frames_expected=frames_expected)

    def file(self, table: str, video_id: str) -> Path:
        return table_file(Path(self.root), table, video_id)

    def glob(self, table: str, videos: str = "*") -> str:
        """A glob that matches only committed files (temporary files are hidden and end in .tmp)."""
        return str(Path(self.root) / table / f"video_id={videos}" / "*.parquet")

    def relation_sql(self, table: str, videos: str = "*") -> str:
        """SQL for the table (of the videos whose id matches the glob `videos`) as a relation; typed
        and empty while no such video has been processed."""
        pattern = self.glob(table, videos)
        if any(Path(self.root, table).glob(f"video_id={videos}/*.parquet")):
            return _parquet_sql([pattern])
        return _empty_sql(table)

    def files_relation_sql(self, table: str, files: Sequence[str]) -> str:
        """SQL for the table read from these files only (the videos an incremental build needs)."""
        return _parquet_sql(files) if files else _empty_sql(table)


def _parquet_sql(paths: Sequence[str]) -> str:
    quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    return f"read_parquet([{quoted}], union_by_name = true, hive_partitioning = false)"


def _empty_sql(table: str) -> str:
    columns = ", ".join(f"NULL::{duckdb_type(f.type)} AS {f.name}" for f in SCHEMAS[table])
    return f"(SELECT {columns} WHERE false)"
