"""Data tests declared beside a model (`<model>.yml`), run as Dagster asset checks.

```yaml
checks:
  not_null: [video_id, frames_processed]      # no NULLs in these columns (one check)
  unique: [[video_id], [source, file]]         # each column list is unique (a bare list = one key)
  accepted_values: {backend: "{{ var('backend_kinds') }}"}   # a list, or a variable the project defines
  row_count_min: 1                             # at least this many rows
  expect_no_rows:                              # named queries that must return nothing
    detections_without_frame: select ... from {{ source('predictions') }} anti join {{ source('frames') }} using (...)
```
Every check is a query returning the offending rows; it passes when there are none. Checks are
blocking: a failure stops downstream models in the same run and in automation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_VAR = re.compile(r"^\{\{\s*var\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\)\s*\}\}$")
_KINDS = {"not_null", "unique", "accepted_values", "row_count_min", "expect_no_rows"}


class CheckDefinitionError(ValueError):
    """A checks file is malformed; the message names the file."""


@dataclass(frozen=True)
class SqlCheck:
    name: str
    description: str
    sql: str  # selects offending rows; `{{ this }}` is the model's table


def parse_checks(path: Path, spec: Any, variables: Mapping[str, list[Any]]) -> list[SqlCheck]:
    """The `checks:` section of a model's .yml; `{{ var('name') }}` stands for a list the project defines."""
    spec = spec or {}
    if not isinstance(spec, dict):
        raise CheckDefinitionError(f"{path}: `checks` must be a mapping of check kinds")
    unknown = set(spec) - _KINDS
    if unknown:
        raise CheckDefinitionError(f"{path}: unknown check kind(s) {sorted(unknown)}; use {sorted(_KINDS)}")
    spec = {kind: _resolve_vars(path, arg, variables) for kind, arg in spec.items()}  # names the file itself
    try:
        return [check for kind, arg in spec.items() for check in _BUILDERS[kind](arg)]
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckDefinitionError(f"{path}: {exc}") from exc


def _resolve_vars(path: Path, arg: Any, variables: Mapping[str, list[Any]]) -> Any:
    if isinstance(arg, dict):
        return {key: _resolve_vars(path, value, variables) for key, value in arg.items()}
    match = _VAR.match(arg) if isinstance(arg, str) else None
    if match is None:
        return arg
    if match.group(1) not in variables:
        raise CheckDefinitionError(f"{path}: unknown variable {match.group(1)!r}; defined: {sorted(variables)}")
    return list(variables[match.group(1)])


def _not_null(columns: list[str]) -> list[SqlCheck]:
    """One check for all the columns: each check result is a few writes to the instance's event log (on
    SQLite, 20-40 ms each), and the offending rows show which column is NULL."""
    if isinstance(columns, str):
        columns = [columns]
    any_null = " or ".join(f'"{c}" is null' for c in columns)
    return [SqlCheck("not_null", f"never NULL: {', '.join(columns)}", f"select * from {{{{ this }}}} where {any_null}")]


def _unique(keys: list[Any]) -> list[SqlCheck]:
    key_lists = [keys] if all(isinstance(k, str) for k in keys) else keys
    checks = []
    for key in key_lists:
        cols = ", ".join(f'"{c}"' for c in key)
        checks.append(
            SqlCheck(
                f"unique_{'_'.join(key)}",
                f"({', '.join(key)}) is unique",
                f"select {cols}, count(*) as copies from {{{{ this }}}} group by all having count(*) > 1",
            )
        )
    return checks


def _accepted_values(columns: dict[str, list[Any]]) -> list[SqlCheck]:
    checks = []
    for column, values in columns.items():
        allowed = ", ".join(_literal(v) for v in values)
        checks.append(
            SqlCheck(
                f"accepted_values_{column}",
                f"{column} is one of {values}",
                f'select "{column}", count(*) as rows from {{{{ this }}}} '
                f'where "{column}" not in ({allowed}) group by all',
            )
        )
    return checks


def _row_count_min(minimum: int) -> list[SqlCheck]:
    return [
        SqlCheck(
            "row_count_min",
            f"at least {int(minimum)} row(s)",
            f"select count(*) as rows from {{{{ this }}}} having count(*) < {int(minimum)}",
        )
    ]


def _expect_no_rows(queries: dict[str, str]) -> list[SqlCheck]:
    return [SqlCheck(name, f"no rows from: {sql.strip()}", sql.strip().rstrip(";")) for name, sql in queries.items()]


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


_BUILDERS: dict[str, Callable[[Any], list[SqlCheck]]] = {
    "not_null": _not_null,
    "unique": _unique,
    "accepted_values": _accepted_values,
    "row_count_min": _row_count_min,
    "expect_no_rows": _expect_no_rows,
}
