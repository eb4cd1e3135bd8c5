"""The dbt_like_sql folder: find `.sql` models, read their refs and sources, render runnable SQL.

A model is a SELECT in `<name>.sql`. Its leading `--` comment lines are its description.
`{{ ref('other_model') }}` names another model's table; `{{ source('predictions') }}` (alias
`detections`), `{{ source('frames') }}`, `{{ source('videos') }}` and `{{ source('tracks') }}` (one row per
tracked object, written by the preview assets) name the Parquet tables; live cameras add
`{{ source('camera_segments') }}` and `{{ source('camera_gaps') }}` (their health as data).
Beside the model, `<name>.yml` holds its data tests (`checks:`, see checks.py), what each column
means (`columns: {name: description}`, shown in the UI's column schema) and how it is materialized,
as in dbt:

```yaml
materialized: table        # the default: rebuilt from all the Parquet when its inputs change
materialized: view         # computed when read: per-row steps other models and Vision Events build on
materialized: incremental  # only the partitions whose videos changed since the last build are replaced
partition_by: video_id     # each row belongs to one video (video_id is a column of the model)
partition_by: {field: hour_utc, granularity: hour}   # or: rows of the frames in one minute|hour|day
lookback: 1                # a window runs on across a camera's hours: read that many hours before
```
What is new needs no `is_incremental()` filter: an incremental build gives the SELECT only the
videos it needs (see incremental.py); `full_refresh` (run config) rebuilds everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from video_assets.sql.checks import CheckDefinitionError, SqlCheck, parse_checks

Materialized = Literal["table", "view", "incremental"]
GRANULARITIES = ("minute", "hour", "day")
VIDEO_PARTITION = "video_id"

# source name -> Parquet table (written by frame_predictions and camera_window; the camera_* tables by cameras
# only; tracks by video_preview and camera_preview)
SOURCES = {
    "predictions": "detections",
    "detections": "detections",
    "frames": "frames",
    "videos": "videos",
    "tracks": "tracks",
    "camera_segments": "camera_segments",
    "camera_gaps": "camera_gaps",
}
_REF = re.compile(r"\{\{\s*ref\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\)\s*\}\}")
_SOURCE = re.compile(r"\{\{\s*source\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\)\s*\}\}")
_THIS = re.compile(r"\{\{\s*this\s*\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONFIG_KEYS = ("checks", "columns", "materialized", "partition_by", "lookback")


class SqlModelError(ValueError):
    """A model file is malformed; the message names the file."""


@dataclass(frozen=True)
class Partitioning:
    """The rows an incremental build replaces together: one video's, or one time bucket's."""

    field: str  # video_id, or a timestamp column of the model: the UTC bucket of frame_ts
    granularity: str | None = None  # None: partitions are videos
    lookback: int = 0  # hours of the same camera read before each camera hour, for windows across its hours

    @property
    def by_video(self) -> bool:
        return self.granularity is None


@dataclass(frozen=True)
class SqlModel:
    name: str
    path: Path
    sql: str
    description: str
    refs: tuple[str, ...]
    sources: tuple[str, ...]
    checks: tuple[SqlCheck, ...] = ()
    materialized: Materialized = "table"
    columns: Mapping[str, str] = field(default_factory=dict)  # column -> what it means, from the .yml
    partitioning: Partitioning | None = None  # incremental models only
    views: tuple[SqlModel, ...] = ()  # the views an incremental model reads, upstream first

    def render(self, source_relation: Callable[[str], str]) -> str:
        """The model's SELECT with refs turned into table names and sources into Parquet scans."""
        return render_sql(self.sql, source_relation)


def render_sql(sql: str, source_relation: Callable[[str], str], this: str | None = None) -> str:
    if this is not None:
        sql = _THIS.sub(f'"{this}"', sql)
    sql = _REF.sub(lambda m: f'"{m.group(1)}"', sql)
    return _SOURCE.sub(lambda m: source_relation(SOURCES[m.group(1)]), sql)


def reads_models(sql: str) -> bool:
    """Whether the SQL names the model itself or another model (not only sources)."""
    return bool(_THIS.search(sql) or _REF.search(sql))


def load_models(sql_dir: Path, variables: Mapping[str, list[Any]] | None = None) -> list[SqlModel]:
    """Every model in `sql_dir`; `variables` are the lists its data tests may name with {{ var('...') }}."""
    models = [_parse(path, variables or {}) for path in sorted(sql_dir.glob("*.sql"))]
    names = {m.name for m in models}
    for model in models:
        if model.name in SOURCES:
            raise SqlModelError(f"{model.path}: {model.name!r} is the name of a source view; rename the model")
        missing = sorted(set(model.refs) - names)
        if missing:
            raise SqlModelError(f"{model.path}: ref() to unknown model(s) {missing}; models are {sorted(names)}")
    by_name = {m.name: m for m in models}
    return [replace(m, views=_views_read(m, by_name)) if m.materialized == "incremental" else m for m in models]


def _views_read(model: SqlModel, by_name: Mapping[str, SqlModel]) -> tuple[SqlModel, ...]:
    """An incremental build narrows the sources; a table it read would not be narrowed, so only views may be."""
    views: dict[str, SqlModel] = {}

    def visit(name: str) -> None:
        ref = by_name[name]
        if ref.materialized != "view":
            raise SqlModelError(
                f"{model.path}: an incremental model reads sources and views only, but ref('{name}') is a "
                f"{ref.materialized}; make {name} a view, or this model a table"
            )
        for upstream in ref.refs:
            visit(upstream)
        views.setdefault(name, ref)

    for name in model.refs:
        visit(name)
    return tuple(views.values())


def model_named(models: list[SqlModel], name: str) -> SqlModel:
    for model in models:
        if model.name == name:
            return model
    raise SqlModelError(f"No SQL model named {name!r}; the models are {sorted(m.name for m in models)}")


def _parse(path: Path, variables: Mapping[str, list[Any]]) -> SqlModel:
    if not _NAME.match(path.stem):
        raise SqlModelError(f"{path}: model file names must be SQL identifiers (letters, digits, _)")
    sql = path.read_text()
    config = _config(path.with_suffix(".yml"))
    checks = tuple(parse_checks(path.with_suffix(".yml"), config.get("checks"), variables))
    materialized = config.get("materialized", "table")
    if materialized not in ("table", "view", "incremental"):
        raise SqlModelError(
            f"{path.with_suffix('.yml')}: materialized: {materialized!r}; use table, view or incremental"
        )
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
        materialized=materialized,
        columns=_columns(path.with_suffix(".yml"), config.get("columns")),
        partitioning=_partitioning(path.with_suffix(".yml"), config, materialized),
    )


def _partitioning(path: Path, config: Mapping[str, Any], materialized: str) -> Partitioning | None:
    if materialized != "incremental":
        extra = sorted({"partition_by", "lookback"} & set(config))
        if extra:
            raise SqlModelError(f"{path}: {extra} only apply to `materialized: incremental`")
        return None
    spec, lookback = config.get("partition_by"), config.get("lookback", 0)
    if spec == VIDEO_PARTITION:
        if lookback:
            raise SqlModelError(f"{path}: lookback applies to time partitions; a video partition reads its whole video")
        return Partitioning(VIDEO_PARTITION)
    if not isinstance(spec, dict) or set(spec) != {"field", "granularity"} or not _NAME.match(str(spec["field"])):
        raise SqlModelError(
            f"{path}: an incremental model needs `partition_by: video_id` or "
            f"`partition_by: {{field: <timestamp column>, granularity: minute|hour|day}}`, not {spec!r}"
        )
    if spec["granularity"] not in GRANULARITIES:
        raise SqlModelError(f"{path}: granularity {spec['granularity']!r}; use one of {list(GRANULARITIES)}")
    if not isinstance(lookback, int) or isinstance(lookback, bool) or lookback < 0:
        raise SqlModelError(f"{path}: lookback must be a whole number of camera hours (0 or more), not {lookback!r}")
    return Partitioning(spec["field"], spec["granularity"], lookback)


def _config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CheckDefinitionError(f"{path}: not valid YAML ({exc})") from exc
    unknown = set(config) - set(_CONFIG_KEYS) if isinstance(config, dict) else {"(not a mapping)"}
    if unknown:
        raise CheckDefinitionError(f"{path}: unknown key(s) {sorted(unknown)}; use {', '.join(_CONFIG_KEYS)}")
    return config


def _columns(path: Path, spec: Any) -> dict[str, str]:
    """The `columns:` section: a mapping of column name to a sentence saying what it holds."""
    spec = spec or {}
    if not isinstance(spec, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in spec.items()):
        raise SqlModelError(f"{path}: `columns` must map each column name to its description (a string)")
    return {name: " ".join(text.split()) for name, text in spec.items()}


def _leading_comment(sql: str) -> str:
    lines = []
    for line in sql.strip().splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(lines).strip()
