"""`video-assets sql "select ..."`: query the published warehouse read-only."""

from __future__ import annotations

import csv
import json
import sys
from typing import TextIO

from video_assets.cli.tables import format_table
from video_assets.predictions.store import PredictionStore
from video_assets.settings import Settings
from video_assets.sql.warehouse import Warehouse, WarehouseNotBuiltError


def run_query(settings: Settings, sql: str, output: str = "table", out: TextIO = sys.stdout) -> int:
    """The views over the Parquet (detections, frames, videos) read the shared store: on many machines,
    the object store, whose filesystem the reader's connection registers."""
    warehouse = Warehouse.from_settings(settings)
    import duckdb

    try:
        with warehouse.read(PredictionStore.from_settings(settings)) as conn:
            result = conn.execute(sql)
            header = [d[0] for d in result.description] if result.description else []
            rows = result.fetchall()
    except WarehouseNotBuiltError as exc:
        print(f"video-assets sql: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        print(f"video-assets sql: {exc}", file=sys.stderr)
        return 2
    if output == "csv":
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    elif output == "json":
        json.dump([dict(zip(header, row, strict=True)) for row in rows], out, default=str, indent=1)
        out.write("\n")
    else:
        out.write(format_table(header, rows) + f"\n({len(rows)} row{'s' if len(rows) != 1 else ''})\n")
    return 0
