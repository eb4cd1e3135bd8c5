"""One Dagster asset per SQL model, all built by one step: DuckDB tables published atomically, data tests as checks."""

import graphlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from video_assets.glossary import described
from video_assets.predictions.store import PredictionStore
from video_assets.sql import incremental
from video_assets.sql.checks import SqlCheck
from video_assets.sql.models import SOURCES, SqlModel, SqlModelError, load_models, reads_models, render_sql
from video_assets.sql.warehouse import Warehouse

SQL_GROUP = "sql"
METADATA = {
    "sql_file": "The model's SELECT (definition).",
    "preview": "The first rows, transposed: one line per column, one column per row.",
    "sample": "(on a failed data test) offending rows.",
    "offending_rows": "(on a data test) rows that break it.",
}
BUILD_SQL_MODELS = "build_sql_models"
SQL_MODELS_OP = "sql_models"  # the one step that builds every model


def build_sql_models_job() -> Any:  # an unresolved asset job (its class is not public)
    """Made anew for each load of the definitions (see ingest.assets.process_video_job)."""
    return dg.define_asset_job(
        BUILD_SQL_MODELS,
        selection=dg.AssetSelection.groups(SQL_GROUP),
        description="Every SQL model of dbt_like_sql/, rebuilt from the Parquet tables, and its data tests.",
    )


DUCKDB_POOL = "duckdb"
PREVIEW_ROWS = 5  # shown transposed: one line per column, one column per row
PREVIEW_CELL_CHARS = 40
SAMPLE_ROWS = 10

# Rebuild when new predictions land, even if some videos failed (eager() would wait for every
# partition upstream), once no upstream run is in progress and upstream blocking checks passed.
REBUILD_ON_NEW_DATA = (
    dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("rebuild when upstream data changes")


def build_sql_assets(
    sql_dir: Path, producers: Mapping[str, Sequence[dg.AssetKey]], variables: Mapping[str, list[Any]]
) -> list[dg.AssetsDefinition]:
    """`producers`: for each Parquet table, the assets that write it (a model reading it is downstream of them);
    `variables`: the lists data tests may name with {{ var('...') }}."""
    models = load_models(sql_dir, variables)
    return [_sql_models_asset(models, producers)] if models else []


class SqlModelConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="Rebuild an incremental model from all the Parquet, not only the videos that changed "
        "(table models always are; dbt's --full-refresh).",
    )


def full_refresh_run_config() -> dg.RunConfig:
    """Run config that fully refreshes the SQL models a run builds."""
    return dg.RunConfig(ops={SQL_MODELS_OP: SqlModelConfig(full_refresh=True)})


def build_sql_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "sql_models_automation",
        target=dg.AssetSelection.groups(SQL_GROUP),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Rebuilds the SQL models after new predictions land.",
    )


def _sql_models_asset(models: list[SqlModel], producers: Mapping[str, Sequence[dg.AssetKey]]) -> dg.AssetsDefinition:
    """Every model in one step, as dbt builds a project: one warehouse connection and one publish per build,
    not one per model, and a model whose blocking data test fails stops the models downstream of it."""
    ordered = in_dependency_order(models)

    @dg.multi_asset(
        name=SQL_MODELS_OP,
        specs=[_model_spec(model, producers) for model in ordered],
        check_specs=[
            dg.AssetCheckSpec(check.name, asset=model.name, description=check.description, blocking=True)
            for model in ordered
            for check in model.checks
        ],
        can_subset=True,
        pool=DUCKDB_POOL,
    )
    def _build(
        context: dg.AssetExecutionContext, config: SqlModelConfig, warehouse: Warehouse, store: PredictionStore
    ) -> Iterator[dg.MaterializeResult]:
        selected = {key.to_user_string() for key in context.selected_asset_keys}
        stopped: dict[str, str] = {}  # model -> why it and the models reading it are not built
        with warehouse.build(store) as conn:
            _refresh_source_views(conn, store)
            for model in (m for m in ordered if m.name in selected):
                upstream = next((stopped[ref] for ref in model.refs if ref in stopped), None)
                if upstream is not None:
                    stopped[model.name] = upstream
                    context.log.warning(f"Not building {model.name}: {upstream}.")
                    continue
                try:
                    metadata, results = build_model(conn, model, store, config.full_refresh, context.run_id)
                except _sql_errors() as exc:
                    stopped[model.name] = f"{model.name} failed ({type(exc).__name__}: {exc})"
                    context.log.error(f"{stopped[model.name]}; models reading it are not built.")
                    continue
                if not all(r.passed for r in results):
                    stopped[model.name] = f"a blocking data test of {model.name} failed"
                metadata.update(table_metadata(conn, model.name, model.materialized, model.columns))
                checks = {key.name for key in context.selected_asset_check_keys if key.asset_key.path == [model.name]}
                yield dg.MaterializeResult(
                    asset_key=model.name,
                    metadata=metadata,
                    check_results=[r for r in results if r.check_name in checks],
                )
        failed = [why for name, why in stopped.items() if why.startswith(f"{name} failed")]
        if failed:  # after publishing what was built
            raise dg.Failure(description="; ".join(failed), allow_retries=False)

    return _build


def _model_spec(model: SqlModel, producers: Mapping[str, Sequence[dg.AssetKey]]) -> dg.AssetSpec:
    upstream = {key: None for source in model.sources for key in producers.get(SOURCES[source], ())}
    return dg.AssetSpec(
        model.name,
        group_name=SQL_GROUP,
        kinds={"duckdb", "sql"},
        deps=[dg.AssetKey(ref) for ref in model.refs] + list(upstream),
        skippable=True,  # not built when a model it reads failed or failed a blocking data test
        automation_condition=REBUILD_ON_NEW_DATA,
        description=described(model.description, METADATA),
        metadata={
            "sql_file": dg.MetadataValue.path(str(model.path)),
            # Before the first build too, the UI lists what each column means.
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name, "", description=text) for name, text in model.columns.items()]
            ),
        },
    )


def in_dependency_order(models: Sequence[SqlModel]) -> list[SqlModel]:
    """Each model after the models it reads (a view is created over views that exist)."""
    by_name = {m.name: m for m in models}
    sorter = graphlib.TopologicalSorter({m.name: set(m.refs) for m in models})
    try:
        return [by_name[name] for name in sorter.static_order()]
    except graphlib.CycleError as exc:
        raise SqlModelError(f"SQL models read each other in a cycle: {' -> '.join(exc.args[1])}") from exc


def _sql_errors() -> tuple[type[BaseException], ...]:
    import duckdb

    return (duckdb.Error,)


def build_model(
    conn: Any,
    model: SqlModel,
    store: PredictionStore,
    full_refresh: bool = False,
    snapshot_key: str | None = None,
    attempts: int = 3,
) -> tuple[dict, list[dg.AssetCheckResult]]:
    """Build the model in the warehouse `conn` and run its data tests, in one transaction: (metadata,
    check results). Builds with the same `snapshot_key` (one build's) share one look at the Parquet.
    A video deleted while the build read it fails the read: look again."""
    import duckdb

    for _ in range(attempts - 1):
        try:
            return _transaction(conn, model, store, full_refresh, snapshot_key)
        except duckdb.IOException:
            snapshot_key = None  # look at the Parquet again
    return _transaction(conn, model, store, full_refresh, snapshot_key)


def _transaction(
    conn: Any, model: SqlModel, store: PredictionStore, full_refresh: bool, snapshot_key: str | None
) -> tuple[dict, list[dg.AssetCheckResult]]:
    conn.execute("BEGIN TRANSACTION")
    try:
        metadata, results = _build_model(conn, model, store, full_refresh, snapshot_key)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return metadata, results


def _build_model(
    conn: Any, model: SqlModel, store: PredictionStore, full_refresh: bool, snapshot_key: str | None
) -> tuple[dict, list[dg.AssetCheckResult]]:
    if model.materialized == "view":
        _create_view(conn, model.name, model.render(store.relation_sql), _view_definitions(conn))
        return {}, [_run_check(conn, model.name, check, store.relation_sql) for check in model.checks]
    if model.materialized == "table":
        conn.execute(f'CREATE OR REPLACE TABLE "{model.name}" AS {model.render(store.relation_sql)}')
        return {}, [_run_check(conn, model.name, check, store.relation_sql) for check in model.checks]
    build = incremental.build(conn, model, store, full_refresh, snapshot_key)
    # a test over sources alone reads what the build read; one that reads the model reads all the sources
    results = [
        _run_check(conn, model.name, check, store.relation_sql if reads_models(check.sql) else build.source_relation)
        for check in model.checks
    ]
    incremental.record(conn, model, build, checks_passed=all(r.passed for r in results))
    return build.metadata(), results


def _refresh_source_views(conn: Any, store: PredictionStore) -> None:
    """Views over the Parquet tables, so readers can `select ... from detections` too."""
    current = _view_definitions(conn)
    for table in dict.fromkeys(SOURCES.values()):
        _create_view(conn, table, f"SELECT * FROM {store.relation_sql(table)}", current)


def _view_definitions(conn: Any) -> dict[str, str]:
    """The SQL each view was created from, kept as its comment."""
    return dict(conn.execute("SELECT view_name, comment FROM duckdb_views() WHERE schema_name = 'main'").fetchall())


def _create_view(conn: Any, name: str, sql: str, current: dict[str, str]) -> None:
    """Create the view unless it already reads exactly this SQL: creating a view over the Parquet reads
    the footer of every file."""
    if current.get(name) != sql:
        conn.execute(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')
        conn.execute(f"""COMMENT ON VIEW "{name}" IS '{sql.replace("'", "''")}'""")


def _run_check(conn: Any, table: str, check: SqlCheck, source_relation: Callable[[str], str]) -> dg.AssetCheckResult:
    offending = render_sql(check.sql, source_relation, this=table)
    count = conn.execute(f"SELECT count(*) FROM ({offending})").fetchone()[0]
    metadata: dict[str, Any] = {"offending_rows": count}
    if count:
        sample = conn.execute(f"SELECT * FROM ({offending}) LIMIT {SAMPLE_ROWS}")
        metadata["sample"] = dg.MetadataValue.md(_markdown_table([d[0] for d in sample.description], sample.fetchall()))
    return dg.AssetCheckResult(
        check_name=check.name,
        asset_key=table,
        passed=count == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=check.description,
        metadata=metadata,
    )


def table_metadata(
    conn: Any, table: str, materialized: str = "table", descriptions: Mapping[str, str] | None = None
) -> dict:
    """Column schema (with each column's description), and for a table its row count and first rows, for
    the asset's page in the UI (a view would be computed over all history to count or preview it)."""
    descriptions = descriptions or {}
    columns = conn.execute(  # from the catalog: DESCRIBE would bind a view again, reading every file's footer
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? "
        "ORDER BY column_index",
        [table],
    ).fetchall()
    schema = [dg.TableColumn(name, str(kind), description=descriptions.get(name)) for name, kind, *_ in columns]
    metadata: dict[str, Any] = {
        "dagster/column_schema": dg.TableSchema(columns=schema),
        "dagster/table_name": table,
    }
    if materialized == "view":
        return metadata
    preview = conn.execute(f'SELECT * FROM "{table}" LIMIT {PREVIEW_ROWS}')
    metadata["preview"] = dg.MetadataValue.md(transposed_table([d[0] for d in preview.description], preview.fetchall()))
    metadata["dagster/row_count"] = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    return metadata


def transposed_table(header: list[str], rows: list[tuple]) -> str:
    """The first rows as columns and the table's columns as rows: a wide table stays readable in the UI's
    metadata column (a row per column, however many columns the model has)."""
    if not rows:
        return "No rows."
    lines = [
        "| column | " + " | ".join(f"row {i + 1}" for i in range(len(rows))) + " |",
        "|---" * (len(rows) + 1) + "|",
    ]
    for i, name in enumerate(header):
        lines.append(f"| **{_cell(name)}** | " + " | ".join(_cell(row[i]) for row in rows) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text if len(text) <= PREVIEW_CELL_CHARS else text[: PREVIEW_CELL_CHARS - 1] + "…"
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_table(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
