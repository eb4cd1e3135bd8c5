"""SQL: one asset per model in dbt_like_sql/, their checks, automation, and the Warehouse resource."""

from collections.abc import Mapping, Sequence

import dagster as dg

from video_assets.backends.registry import KINDS
from video_assets.settings import Settings
from video_assets.sql.assets import build_sql_assets, build_sql_automation_sensor, build_sql_models_job
from video_assets.sql.warehouse import Warehouse


def sql_definitions(settings: Settings, producers: Mapping[str, Sequence[dg.AssetKey]]) -> dg.Definitions:
    """`producers`: which assets write each Parquet table the models read."""
    return dg.Definitions(
        assets=build_sql_assets(settings.sql_dir, producers, sql_variables()),
        jobs=[build_sql_models_job()],
        sensors=[build_sql_automation_sensor()],
        resources={"warehouse": Warehouse.from_settings(settings)},
    )


def sql_variables() -> dict[str, list[str]]:
    """What the models' data tests may name with {{ var('...') }}."""
    return {"backend_kinds": list(KINDS)}
