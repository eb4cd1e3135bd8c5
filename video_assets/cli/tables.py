"""Plain-text tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_CELL = 80


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell (cells longer than MAX_CELL are cut, except the last)."""
    cells = [[_cell(v, last=i == len(header) - 1) for i, v in enumerate(row)] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any, last: bool) -> str:
    text = "NULL" if value is None else str(value)
    return text if last or len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"
