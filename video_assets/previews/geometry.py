"""The lines and zones a workflow counts with, read from its spec, so previews draw them and tracks use them.

Line counters (`roboflow_core/line_counter@v1|v2`) and time-in-zone blocks (`roboflow_core/time_in_zone@v1|v2|v3`)
take their geometry either literally or from a workflow input (`$inputs.line`), whose value is the run's
workflow parameter or else the input's default. A saved workflow (fetched from Roboflow) has no spec here:
it has no geometry, and previews and tracks simply leave lines and zones out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LINE_BLOCKS = ("roboflow_core/line_counter@v1", "roboflow_core/line_counter@v2")
ZONE_BLOCKS = ("roboflow_core/time_in_zone@v1", "roboflow_core/time_in_zone@v2", "roboflow_core/time_in_zone@v3")
# line_counter@v1 and every time_in_zone version default to the box centre; line_counter@v2 to
# supervision's default (all four corners must cross).
_DEFAULT_ANCHOR = {"roboflow_core/line_counter@v2": None}

Point = tuple[float, float]


@dataclass(frozen=True)
class Line:
    name: str  # the step's name: what `crossings.line` says
    start: Point
    end: Point
    anchor: str | None  # supervision Position name; None: the four corners


@dataclass(frozen=True)
class Zone:
    name: str
    polygons: tuple[tuple[Point, ...], ...]  # in the zone when inside any of them
    anchor: str


@dataclass(frozen=True)
class Geometry:
    lines: tuple[Line, ...] = ()
    zones: tuple[Zone, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.lines or self.zones)


NO_GEOMETRY = Geometry()


def geometry_of(spec: dict[str, Any] | None, parameters: dict[str, Any] | None = None) -> Geometry:
    """The lines and zones of an inline workflow spec, with the run's workflow parameters applied."""
    if not spec:
        return NO_GEOMETRY
    inputs: dict[str, Any] = {
        str(i.get("name")): i.get("default_value") for i in spec.get("inputs", []) if isinstance(i, dict)
    }
    inputs.update(parameters or {})
    lines, zones = [], []
    for step in spec.get("steps", []):
        kind, name = step.get("type"), str(step.get("name"))
        anchor = _resolve(step.get("triggering_anchor", _DEFAULT_ANCHOR.get(kind, "CENTER")), inputs)
        if kind in LINE_BLOCKS:
            segment = _resolve(step.get("line_segment"), inputs)
            if _is_points(segment, 2, exactly=True):
                lines.append(Line(name, _point(segment[0]), _point(segment[1]), anchor))
        elif kind in ZONE_BLOCKS:
            zone = _resolve(step.get("zone"), inputs)
            polygons = [zone] if _is_points(zone, 3) else zone if isinstance(zone, list) else []
            if polygons and all(_is_points(p, 3) for p in polygons):
                zones.append(Zone(name, tuple(tuple(_point(p) for p in poly) for poly in polygons), anchor or "CENTER"))
    return Geometry(tuple(lines), tuple(zones))


def _resolve(value: Any, inputs: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$inputs."):
        return inputs.get(value.removeprefix("$inputs."))
    return value


def _is_points(value: Any, count: int, exactly: bool = False) -> bool:
    if not isinstance(value, (list, tuple)) or (len(value) != count if exactly else len(value) < count):
        return False
    return all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(c, (int, float)) for c in p) for p in value
    )


def _point(value: Any) -> Point:
    return (float(value[0]), float(value[1]))


def geometry_for(
    rows_version: str, spec: dict[str, Any] | None, spec_version: str | None, parameters: dict[str, Any] | None = None
) -> tuple[Geometry, str]:
    """The geometry to draw and replay for predictions made by `rows_version`, and a line saying which.

    Only the spec that made the predictions is used: after a workflow change, old predictions are not
    drawn with the new line.
    """
    if spec is None:
        return NO_GEOMETRY, "no lines or zones: the workflow is a saved one (its spec is not here)"
    if spec_version != rows_version:
        return NO_GEOMETRY, f"no lines or zones: made by workflow {rows_version}, configured now {spec_version}"
    found = geometry_of(spec, parameters)
    names = [f"line {line.name}" for line in found.lines] + [f"zone {zone.name}" for zone in found.zones]
    return found, ", ".join(names) or "the workflow counts no line and watches no zone"
