"""The activity chart: detections per processed frame over time, one step line per class, line crossings
as marks above them, the legend beside the plot.

Drawn with Pillow rather than a plotting library: every video run draws one, and matplotlib took
0.1-0.14 s of CPU a chart (most of a short clip's preview step), this about 0.01 s. The lines are
horizontal and vertical steps, so they need no anti-aliasing; text is FreeType-rendered.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow itself is imported where a chart is drawn, not when the code location loads
    from PIL import Image, ImageDraw, ImageFont

    Font = ImageFont.FreeTypeFont | ImageFont.ImageFont  # the latter only where Pillow lacks FreeType

SIZE = (960, 300)
CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip
CROSSING_MARKS = (("in", "#2ca02c", 1), ("out", "#d62728", -1))  # direction, colour, triangle pointing up (1) or down
GRID = (232, 232, 232)
INK = (30, 30, 30)
LINE_WIDTH = 2
MARK_RADIUS = 6
HEADROOM, MARK_LEVEL = 1.18, 1.08  # times the highest value: where the y axis ends, where crossings are marked
Y_TICKS, X_TICKS = 6, 10  # at most this many intervals between ticks on each axis


@dataclass
class Series:
    """What the activity chart shows, already binned."""

    bin_s: float
    x_label: str
    counts: dict[str, list[float]] = field(default_factory=dict)  # class -> detections per frame, per bin (NaN: none)
    crossings: list[tuple[float, str]] = field(default_factory=list)  # (time in the video, "<line> in|out")


@dataclass(frozen=True)
class _Plot:
    """The plot's rectangle in pixels and the data range it shows."""

    left: int
    top: int
    right: int
    bottom: int
    x_max: float
    y_max: float

    def px(self, x: float, y: float) -> tuple[float, float]:
        return (
            self.left + x / self.x_max * (self.right - self.left),
            self.bottom - y / self.y_max * (self.bottom - self.top),
        )


def activity_chart(series: Series, title: str) -> bytes:
    """A 960 x 300 PNG of `series`."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    fonts = {size: _font(size) for size in (11, 12, 13)}
    highest = max((v for values in series.counts.values() for v in values if not math.isnan(v)), default=0.0) or 1.0
    y_top = highest * HEADROOM
    x_end = _x_extent(series)
    x_ticks, y_ticks = nice_ticks(x_end, X_TICKS), nice_ticks(y_top, Y_TICKS)
    legend = _legend_entries(series)
    legend_width = _legend_width(draw, legend, fonts[11])
    tick_width = max(draw.textlength(_tick_label(v, y_ticks), font=fonts[11]) for v in y_ticks)
    plot = _Plot(
        left=int(24 + tick_width + 10),
        top=26,
        right=SIZE[0] - (legend_width + 20 if legend else 12),
        bottom=SIZE[1] - 42,
        x_max=x_end,
        y_max=y_top,
    )
    _draw_axes(draw, plot, x_ticks, y_ticks, fonts[11])
    _draw_labels(image, draw, plot, title, series.x_label, fonts)
    for (_, values), color in zip(sorted(series.counts.items()), itertools.cycle(CLASS_COLORS)):
        _draw_steps(draw, plot, values, series.bin_s, color)
    for direction, color, pointing in CROSSING_MARKS:
        for time_s in _crossing_times(series, direction):
            _draw_mark(draw, plot.px(time_s, highest * MARK_LEVEL), color, pointing)
    if legend:
        _draw_legend(draw, legend, (SIZE[0] - legend_width - 8, 6), legend_width, fonts[11])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def nice_ticks(high: float, intervals: int) -> list[float]:
    """Ticks from 0 up to `high`, at the smallest step of 1, 2, 2.5 or 5 times a power of ten that makes at
    most `intervals` intervals."""
    high = high if high > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(high / intervals))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if high / (m * magnitude) <= intervals)
    return [round(i * step, 10) for i in range(math.floor(high / step + 1e-9) + 1)]


def _x_extent(series: Series) -> float:
    bins = max((len(values) for values in series.counts.values()), default=0)
    return max([bins * series.bin_s, *(t for t, _ in series.crossings), series.bin_s])


def _tick_label(value: float, ticks: Sequence[float]) -> str:
    """As many decimals as the step needs, the same for every tick of the axis."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = next(d for d in range(7) if abs(step * 10**d - round(step * 10**d)) < 1e-6)
    return f"{value:.{decimals}f}"


def _draw_axes(draw: ImageDraw.ImageDraw, plot: _Plot, x_ticks: list[float], y_ticks: list[float], font: Font) -> None:
    for value in x_ticks:
        x, _ = plot.px(value, 0)
        draw.line([(x, plot.top), (x, plot.bottom)], fill=GRID)
        draw.line([(x, plot.bottom), (x, plot.bottom + 4)], fill=INK)
        draw.text((x, plot.bottom + 6), _tick_label(value, x_ticks), fill=INK, font=font, anchor="ma")
    for value in y_ticks:
        _, y = plot.px(0, value)
        draw.line([(plot.left, y), (plot.right, y)], fill=GRID)
        draw.line([(plot.left - 4, y), (plot.left, y)], fill=INK)
        draw.text((plot.left - 6, y), _tick_label(value, y_ticks), fill=INK, font=font, anchor="rm")
    draw.rectangle([plot.left, plot.top, plot.right, plot.bottom], outline=INK)


def _draw_labels(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    plot: _Plot,
    title: str,
    x_label: str,
    fonts: dict[int, Font],
) -> None:
    from PIL import Image, ImageDraw

    middle = (plot.left + plot.right) / 2
    draw.text((middle, 6), title, fill=INK, font=fonts[13], anchor="ma")
    draw.text((middle, SIZE[1] - 6), x_label, fill=INK, font=fonts[12], anchor="md")
    y_label = "detections per frame"
    width = int(draw.textlength(y_label, font=fonts[12])) + 2
    text = Image.new("RGB", (width, 16), "white")
    ImageDraw.Draw(text).text((1, 1), y_label, fill=INK, font=fonts[12])
    rotated = text.rotate(90, expand=True)
    image.paste(rotated, (4, int((plot.top + plot.bottom - width) / 2)))


def _draw_steps(draw: ImageDraw.ImageDraw, plot: _Plot, values: Sequence[float], bin_s: float, color: str) -> None:
    """Each bin's value drawn across the bin, joined to the next one; a bin without a value breaks the line."""
    previous: tuple[float, float] | None = None
    for i, value in enumerate(values):
        if math.isnan(value):
            previous = None
            continue
        start, end = plot.px(i * bin_s, value), plot.px((i + 1) * bin_s, value)
        if previous is not None:
            draw.line([previous, start], fill=color, width=LINE_WIDTH)
        draw.line([start, end], fill=color, width=LINE_WIDTH)
        previous = end


def _draw_mark(draw: ImageDraw.ImageDraw, at: tuple[float, float], color: str, pointing: int) -> None:
    x, y = at
    r = MARK_RADIUS
    draw.polygon([(x, y - pointing * r), (x - r, y + pointing * r * 0.7), (x + r, y + pointing * r * 0.7)], fill=color)


def _legend_entries(series: Series) -> list[tuple[str, str, int]]:
    """(label, colour, 0 for a line or the direction of a triangle), in drawing order."""
    entries = [(name, color, 0) for name, color in zip(sorted(series.counts), itertools.cycle(CLASS_COLORS))]
    for direction, color, pointing in CROSSING_MARKS:
        if count := len(_crossing_times(series, direction)):
            entries.append((f"line crossed {direction} ({count})", color, pointing))
    return entries


def _crossing_times(series: Series, direction: str) -> list[float]:
    return [t for t, label in series.crossings if label.endswith(f" {direction}")]


def _legend_width(draw: ImageDraw.ImageDraw, entries: list[tuple[str, str, int]], font: Font) -> int:
    return int(max((draw.textlength(label, font=font) for label, _, _ in entries), default=0)) + 40


def _draw_legend(
    draw: ImageDraw.ImageDraw,
    entries: list[tuple[str, str, int]],
    origin: tuple[int, int],
    width: int,
    font: Font,
) -> None:
    x, y = origin
    row = 17
    draw.rectangle([x, y, x + width, y + 6 + row * len(entries)], outline=(200, 200, 200), fill="white")
    for i, (label, color, pointing) in enumerate(entries):
        middle = y + 4 + row * i + row / 2
        if pointing:
            _draw_mark(draw, (x + 16, middle), color, pointing)
        else:
            draw.line([(x + 6, middle), (x + 26, middle)], fill=color, width=LINE_WIDTH)
        draw.text((x + 32, middle), label, fill=INK, font=font, anchor="lm")


@functools.cache
def _font(size: int) -> Font:
    """Pillow's own sans-serif face (no font file needed on the machine)."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size)
