"""One Dagster asset per SQL model, materialized as a DuckDB table that is swapped in atomically."""

from pathlib import Path
from typing import Sequence

import dagster as dg

from video_assets.predictions.store import PredictionStore
from video_assets.sql.models import SqlModel, load_models
from video_assets.sql.warehouse import Warehouse

SQL_GROUP = "sql"
DUCKDB_POOL = "duckdb"
PREVIEW_ROWS = 10


def build_sql_assets(sql_dir: Path, upstream: Sequence[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    """`upstream`: the assets whose Parquet the sources read (frame_predictions, camera_window)."""
    return [_model_asset(model, upstream) for model in load_models(sql_dir)]


def _model_asset(model: SqlModel, upstream: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    deps = [dg.AssetKey(ref) for ref in model.refs] + (list(upstream) if model.sources else [])

    @dg.asset(
        name=model.name,
        group_name=SQL_GROUP,
        kinds={"duckdb", "sql"},
        pool=DUCKDB_POOL,
        deps=deps,
        description=model.description,
        metadata={"sql_file": dg.MetadataValue.path(str(model.path))},
    )
    def _build(context: dg.AssetExecutionContext, warehouse: Warehouse, store: PredictionStore) -> dg.MaterializeResult:
        select = model.render(store.relation_sql)
        with warehouse.connect() as conn:
            conn.execute("BEGIN TRANSACTION")
            conn.execute(f'CREATE OR REPLACE TABLE "{model.name}" AS {select}')
            conn.execute("COMMIT")
            return dg.MaterializeResult(metadata=table_metadata(conn, model.name))

    return _build


def table_metadata(conn, table: str) -> dict:
    """Row count, column schema and a preview of the first rows, for the asset's page in the UI."""
    row_count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    columns = conn.execute(f'DESCRIBE "{table}"').fetchall()
    preview = conn.execute(f'SELECT * FROM "{table}" LIMIT {PREVIEW_ROWS}')
    header = [d[0] for d in preview.description]
    rows = preview.fetchall()
    return {
        "dagster/row_count": row_count,
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(name, str(kind)) for name, kind, *_ in columns]),
        "dagster/table_name": table,
        "preview": dg.MetadataValue.md(_markdown_table(header, rows)),
    }


def _markdown_table(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
