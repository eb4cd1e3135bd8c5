"""Synthetic sample videos with known moving objects, for `video-assets demo` and the tests.

Each object is a textured block sliding across a static grid at constant speed, so a motion
detector sees its whole body and the true box at every frame is known exactly (`truth_boxes`).
The face sample slides a real photograph instead (scikit-image's astronaut, one face), for the
face-tracking workflow's real detector.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

WIDTH, HEIGHT = 640, 360
LINE_X = WIDTH // 2  # the default workflow counts crossings of this vertical line


@dataclass(frozen=True)
class MovingObject:
    name: str
    start_x: float  # centre x at frame 0
    centre_y: float
    speed_px: float  # per frame; negative moves left
    width: int
    height: int
    seed: int
    photo: bool = False  # scikit-image's astronaut photograph instead of random texture

    def centre_x(self, frame_idx: int) -> float:
        return self.start_x + self.speed_px * frame_idx

    def texture(self) -> np.ndarray:
        if self.photo:
            return astronaut(self.width, self.height)
        return np.random.default_rng(self.seed).integers(0, 256, (self.height, self.width, 3), dtype=np.uint8)


@dataclass(frozen=True)
class SampleVideo:
    name: str
    frames: int
    fps: int
    objects: tuple[MovingObject, ...]

    def truth_boxes(self, frame_idx: int) -> dict[str, tuple[float, float, float, float]]:
        """Centre x, y, width, height of the visible part of every object in the picture at this frame."""
        boxes = {}
        for obj in self.objects:
            left = max(obj.centre_x(frame_idx) - obj.width / 2, 0.0)
            right = min(obj.centre_x(frame_idx) + obj.width / 2, float(WIDTH))
            if right > left:
                boxes[obj.name] = ((left + right) / 2, obj.centre_y, right - left, float(obj.height))
        return boxes


SAMPLES = (
    SampleVideo(
        "two_walkers.mp4",
        frames=150,
        fps=15,
        objects=(
            MovingObject("left_to_right", 40, 110, 4.0, 40, 80, seed=1),
            MovingObject("right_to_left", 600, 260, -3.0, 56, 56, seed=2),
        ),
    ),
    SampleVideo(
        "one_runner.mp4",
        frames=120,
        fps=20,
        objects=(MovingObject("runner", 40, 180, 4.5, 48, 96, seed=3),),
    ),
    SampleVideo("empty_hallway.mp4", frames=60, fps=15, objects=()),
)
# The astronaut's photo (240 px square, her face about 47 px) slides right across the line at x=320.
FACE_SAMPLE = SampleVideo(
    "astronaut_walks_by.mp4",
    frames=60,
    fps=15,
    objects=(MovingObject("astronaut", 120, 180, 6.0, 240, 240, seed=0, photo=True),),
)


def write_sample(sample: SampleVideo, path: Path, mtime: float | None = None) -> Path:
    """Encode the sample as H.264 MP4 (written aside, then renamed, so watchers never see half a file)."""
    import av

    background = np.full((HEIGHT, WIDTH, 3), 96, np.uint8)
    background[::40, :, :] = 64
    background[:, ::40, :] = 64
    textures = {obj.name: obj.texture() for obj in sample.objects}
    partial = path.with_name(f".{path.name}.part")
    with av.open(str(partial), "w", format="mp4") as container:
        stream: Any = container.add_stream("libx264", rate=sample.fps)  # a VideoStream
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for frame_idx in range(sample.frames):
            picture = background.copy()
            for obj in sample.objects:
                _paste(picture, textures[obj.name], obj.centre_x(frame_idx), obj.centre_y)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    if mtime is not None:
        os.utime(partial, (mtime, mtime))
    os.replace(partial, path)
    return path


def write_samples(folder: Path, mtime: float | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [write_sample(sample, folder / sample.name, mtime) for sample in SAMPLES]


def astronaut(width: int, height: int) -> np.ndarray:
    """scikit-image's astronaut photograph (public domain, NASA), BGR, resized."""
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut()[:, :, ::-1], (width, height), interpolation=cv2.INTER_AREA)


def _paste(picture: np.ndarray, texture: np.ndarray, centre_x: float, centre_y: float) -> None:
    h, w = texture.shape[:2]
    left, top = round(centre_x - w / 2), round(centre_y - h / 2)
    x0, x1 = max(left, 0), min(left + w, WIDTH)
    y0, y1 = max(top, 0), min(top + h, HEIGHT)
    if x0 < x1 and y0 < y1:
        picture[y0:y1, x0:x1] = texture[y0 - top : y1 - top, x0 - left : x1 - left]
