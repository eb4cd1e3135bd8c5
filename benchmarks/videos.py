"""Benchmark inputs: synthetic H.264 videos with moving textured objects and sensor-like noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def synthetic_video(path: Path, width: int, height: int, fps: int, seconds: float, objects: int = 3) -> Path:
    """Write (once; reused while it exists) a video whose decode cost resembles a real camera's."""
    if path.exists():
        return path
    import av

    rng = np.random.default_rng(7)
    frames = int(round(fps * seconds))
    background = rng.integers(60, 140, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    sizes = [(height // 6, width // 12)] * objects
    textures = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    noise = rng.normal(0, 3, (8, height, width, 3)).astype(np.int16)
    partial = path.with_name(f".{path.name}.part")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(partial), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "b": "3M" if height >= 720 else "1M", "g": str(2 * fps)}
        for i in range(frames):
            picture = np.clip(background.astype(np.int16) + noise[i % len(noise)], 0, 255).astype(np.uint8)
            for k, texture in enumerate(textures):
                h, w = texture.shape[:2]
                lane = (k + 1) * height // (objects + 1)
                x = int((i * (3 + k) + k * width // 3) % (width + w)) - w
                x0, x1 = max(x, 0), min(x + w, width)
                if x0 < x1:
                    picture[lane - h // 2 : lane - h // 2 + h, x0:x1] = texture[:, x0 - x : x1 - x]
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.rename(path)
    return path
