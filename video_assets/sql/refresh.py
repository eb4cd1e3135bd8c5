"""Rebuild every SQL model from all the Parquet (dbt's --full-refresh), from the command line.

Incremental models rebuild in full on their own when their SQL or config changes or their table is
missing; this is for when a person wants to start over anyway. The run is recorded on the instance
under VIDEO_ASSETS_HOME, like the runs the automation sensor starts.
"""

from __future__ import annotations

import sys
from typing import TextIO

import dagster as dg

from video_assets.settings import Settings
from video_assets.sql.assets import SQL_GROUP, full_refresh_run_config


def rebuild_all(settings: Settings, out: TextIO = sys.stdout) -> int:
    """0 if every model was rebuilt and its data tests passed, 1 otherwise."""
    from video_assets.definitions import build_definitions
    from video_assets.runtime.instance import prepare_environment

    prepare_environment(settings)
    defs = build_definitions(settings)
    selection = dg.AssetSelection.groups(SQL_GROUP)
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            [asset for asset in defs.assets or [] if isinstance(asset, dg.AssetsDefinition)],
            selection=selection,
            instance=instance,
            resources=defs.resources,
            run_config=full_refresh_run_config(),
            raise_on_error=False,
        )
    built = sorted(e.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events())
    failed = sorted(
        c.asset_key.to_user_string() + ":" + c.check_name for c in result.get_asset_check_evaluations() if not c.passed
    )
    print(f"Rebuilt in full into {settings.warehouse_path}: {', '.join(built) or 'none'}", file=out)
    if failed or not result.success:
        print(f"Failed: {', '.join(failed) or 'see the run ' + result.run_id + ' in the UI'}", file=out)
        return 1
    return 0
