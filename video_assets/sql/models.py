"""The dbt_like_sql folder: find `.sql` models, read their refs and sources, render runnable SQL.

A model is a SELECT in `<name>.sql`. Its leading `--` comment lines are its description.
`{{ ref('other_model') }}` names another model's table; `{{ source('predictions') }}` (alias
`detections`), `{{ source('frames') }}` and `{{ source('videos') }}` name the Parquet tables; live cameras add
`{{ source('camera_segments') }}` and `{{ source('camera_gaps') }}` (their health as data).
Data tests live beside the model in `<name>.yml` (see checks.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from video_assets.sql.checks import SqlCheck, load_checks

# source name -> Parquet table (written by frame_predictions and camera_window; the camera_* tables by cameras only)
SOURCES = {
    "predictions": "detections",
    "detections": "detections",
    "frames": "frames",
    "videos": "videos",
    "camera_segments": "camera_segments",
    "camera_gaps": "camera_gaps",
}
_REF = re.compile(r"\{\{\s*ref\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\)\s*\}\}")
_SOURCE = re.compile(r"\{\{\s*source\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\)\s*\}\}")
_THIS = re.compile(r"\{\{\s*this\s*\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SqlModelError(ValueError):
    """A model file is malformed; the message names the file."""


@dataclass(frozen=True)
class SqlModel:
    name: str
    path: Path
    sql: str
    description: str
    refs: tuple[str, ...]
    sources: tuple[str, ...]
    checks: tuple[SqlCheck, ...] = ()

    def render(self, source_relation: Callable[[str], str]) -> str:
        """The model's SELECT with refs turned into table names and sources into Parquet scans."""
        return render_sql(self.sql, source_relation)


def render_sql(sql: str, source_relation: Callable[[str], str], this: str | None = None) -> str:
    if this is not None:
        sql = _THIS.sub(f'"{this}"', sql)
    sql = _REF.sub(lambda m: f'"{m.group(1)}"', sql)
    return _SOURCE.sub(lambda m: source_relation(SOURCES[m.group(1)]), sql)


def load_models(sql_dir: Path) -> list[SqlModel]:
    models = [_parse(path) for path in sorted(sql_dir.glob("*.sql"))]
    names = {m.name for m in models}
    for model in models:
        if model.name in SOURCES:
            raise SqlModelError(f"{model.path}: {model.name!r} is the name of a source view; rename the model")
        missing = sorted(set(model.refs) - names)
        if missing:
            raise SqlModelError(f"{model.path}: ref() to unknown model(s) {missing}; models are {sorted(names)}")
    return models


def _parse(path: Path) -> SqlModel:
    if not _NAME.match(path.stem):
        raise SqlModelError(f"{path}: model file names must be SQL identifiers (letters, digits, _)")
    sql = path.read_text()
    checks = tuple(load_checks(path.with_suffix(".yml")))
    check_sql = " ".join(c.sql for c in checks)
    sources = tuple(dict.fromkeys(_SOURCE.findall(sql + check_sql)))
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise SqlModelError(f"{path}: unknown source(s) {unknown}; available: {sorted(SOURCES)}")
    return SqlModel(
        name=path.stem,
        path=path,
        sql=sql.strip().rstrip(";"),
        description=_leading_comment(sql) or f"SQL model {path.name}",
        refs=tuple(dict.fromkeys(_REF.findall(sql + check_sql))),
        sources=sources,
        checks=checks,
    )


def _leading_comment(sql: str) -> str:
    lines = []
    for line in sql.strip().splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(lines).strip()
