"""The PredictionStore resource: where the Parquet tables live and how readers find them."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from video_assets.backends.base import BackendIdentity
from video_assets.ingest.probe import VideoProbe
from video_assets.predictions.schema import CAMERA_TABLES, DERIVED_TABLES, TABLES
from video_assets.predictions.writer import PredictionWriter
from video_assets.settings import Settings
from video_assets.storage import ObjectStore, Store, store_at, table_key

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
    """Hive-style Parquet: <root>/<table>/video_id=<key>/part-0.parquet, where root is a local folder or,
    on many machines, s3://bucket/prefix/predictions (object-store credentials from the AWS variables)."""

    root: str
    endpoint: str | None = None  # an S3-compatible store that is not AWS
    region: str = "us-east-1"

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictionStore:
        root, endpoint, region = settings.shared("predictions")
        return cls(root=root, endpoint=endpoint, region=region)

    def data(self) -> Store:
        """The store the tables live in (a local folder, or a bucket prefix)."""
        return store_at(self.root, self.endpoint, self.region)

    def writer(
        self, video: VideoProbe, identity: BackendIdentity, frames_expected: int | None = None
    ) -> PredictionWriter:
        return PredictionWriter(self.data(), video, identity, frames_expected=frames_expected)

    def file(self, table: str, video_id: str) -> str:
        """Where one video's rows of a table are: a local path, or an s3:// uri."""
        return self.data().uri(table_key(table, video_id))

    def read_table(self, table: str, video_id: str, columns: list[str] | None = None) -> pa.Table:
        return self.data().read_table(table_key(table, video_id), columns=columns)

    def register(self, conn: Any) -> None:
        """Let a DuckDB connection read the tables' uris (an object store's filesystem)."""
        self.data().register(conn)

    def glob(self, table: str, videos: str = "*") -> str:
        """A glob that matches only committed files (temporary files are hidden and end in .tmp)."""
        return self.data().uri(f"{table}/video_id={videos}/*.parquet")

    def relation_sql(self, table: str, videos: str = "*") -> str:
        """SQL for the table (of the videos whose id matches the glob `videos`) as a relation; typed
        and empty while no such video has been processed."""
        if self._has_files(table, videos):
            return _parquet_sql(table, [self.glob(table, videos)])
        return _empty_sql(table)

    def _has_files(self, table: str, videos: str) -> bool:
        if not self.root.startswith("s3://"):
            return any(Path(self.root, table).glob(f"video_id={videos}/*.parquet"))
        data = self.data()
        assert isinstance(data, ObjectStore)
        # One flat listing of the keys that start as the pattern does (a folder listing with a delimiter, then a
        # request per folder, took a third of a second per table on SeaweedFS).
        folder = data.uri(table).removeprefix("s3://")
        literal = f"video_id={videos}".split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
        try:
            keys = data.fs.find(folder, prefix=literal)
        except FileNotFoundError:
            return False
        for key in keys:  # what the glob matches: <table>/video_id=<videos>/*.parquet
            video, _, name = str(key)[len(folder) + 1 :].partition("/")
            if fnmatch.fnmatchcase(video, f"video_id={videos}") and name.endswith(".parquet") and "/" not in name:
                return True
        return False

    def files_relation_sql(self, table: str, files: Sequence[str]) -> str:
        """SQL for the table read from these files only (the videos an incremental build needs)."""
        return _parquet_sql(table, files) if files else _empty_sql(table)


def _parquet_sql(table: str, paths: Sequence[str]) -> str:
    """Every column of the table's schema: one added since some files were written reads as NULL in them
    (union_by_name does that across the files; the empty typed relation, when none of them has it)."""
    quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    files = f"read_parquet([{quoted}], union_by_name = true, hive_partitioning = false)"
    return f"(SELECT * FROM {files} UNION ALL BY NAME {_empty_sql(table)})"


def _empty_sql(table: str) -> str:
    columns = ", ".join(f"NULL::{duckdb_type(f.type)} AS {f.name}" for f in SCHEMAS[table])
    return f"(SELECT {columns} WHERE false)"
