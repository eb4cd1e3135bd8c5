"""The activity chart: where its lines, gaps and crossing marks land in the picture, and its axes' ticks."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from video_assets.previews.chart import CLASS_COLORS, SIZE, Series, activity_chart, nice_ticks

BLUE, ORANGE = (np.array(Image.new("RGB", (1, 1), c).getpixel((0, 0))) for c in CLASS_COLORS[:2])
GREEN, RED = np.array((0x2C, 0xA0, 0x2C)), np.array((0xD6, 0x27, 0x28))
PLOT_BOTTOM = SIZE[1] - 42  # the x axis's row


def _pixels(series: Series) -> np.ndarray:
    png = activity_chart(series, "clip.mp4: objects in view by class, and line crossings")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == SIZE
    return np.asarray(image.convert("RGB")).astype(int)


def _where(pixels: np.ndarray, color: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns drawn in exactly `color`, left of the legend (whose frame is light grey)."""
    frame_columns = np.nonzero((pixels == (200, 200, 200)).all(axis=2).sum(axis=0) >= 20)[0]
    right = int(frame_columns.min()) if len(frame_columns) else pixels.shape[1]
    rows, cols = np.nonzero((pixels[:, :right] == color).all(axis=2))
    return rows, cols


@pytest.mark.parametrize(
    ("high", "intervals", "ticks"),
    [
        (1.18, 6, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (4.0, 10, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]),
        (3600.0, 10, [0.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0, 3500.0]),
        (0.059, 6, [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]),
        (0.0, 6, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    ],
)
def test_ticks_are_round_numbers_up_to_the_end_of_the_axis(high: float, intervals: int, ticks: list[float]) -> None:
    assert nice_ticks(high, intervals) == pytest.approx(ticks)


def test_each_class_is_a_step_line_at_its_height_and_a_bin_without_frames_is_a_gap() -> None:
    pixels = _pixels(Series(1.0, "seconds of video", {"car": [2.0, 2.0, math.nan, 2.0], "person": [1.0] * 4}))
    car_rows, car_cols = _where(pixels, BLUE)
    person_rows, person_cols = _where(pixels, ORANGE)
    assert len(car_cols) and len(person_cols)
    # The line at 2 detections per frame is twice as high above the x axis (the plot's bottom) as the one at 1.
    car_row, person_row, axis_row = np.median(car_rows), np.median(person_rows), PLOT_BOTTOM
    assert (axis_row - car_row) / (axis_row - person_row) == pytest.approx(2.0, rel=0.03)
    # The third bin (of four) has no car line; the person line runs through it.
    left, right = min(person_cols), max(person_cols)
    third = range(int(left + (right - left) * 0.55), int(left + (right - left) * 0.70))
    assert not set(car_cols) & set(third)
    assert set(person_cols) >= set(third)


def test_crossings_are_marked_above_the_lines_in_their_directions_colours() -> None:
    series = Series(1.0, "seconds of video", {"car": [1.0, 1.0]}, [(0.5, "door in"), (1.5, "door out")])
    pixels = _pixels(series)
    green_rows, green_cols = _where(pixels, GREEN)
    red_rows, red_cols = _where(pixels, RED)
    car_rows, car_cols = _where(pixels, BLUE)
    assert len(green_cols) and len(red_cols)
    assert max(green_rows) < min(car_rows) and max(red_rows) < min(car_rows)  # above the line
    assert np.median(green_cols) < np.median(red_cols)  # in at 0.5 s, out at 1.5 s
    quiet = _pixels(Series(1.0, "seconds of video", {"car": [1.0, 1.0]}))
    assert not len(_where(quiet, GREEN)[0]) and not len(_where(quiet, RED)[0])


def test_a_video_without_detections_still_gets_a_chart() -> None:
    pixels = _pixels(Series(1.0, "seconds of video", {}, []))
    assert (pixels < 128).any() and not len(_where(pixels, BLUE)[0])
