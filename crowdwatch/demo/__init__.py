"""Make the demo clip that ``configs/demo.yaml`` plays (``crowdwatch demo`` writes it).

The clip is synthetic (no downloaded or shipped footage): a textured floor with dark round "heads"
on lighter "shoulders" walking across it, written with OpenCV's ``mp4v`` encoder (pip OpenCV has no
H.264), so it works on a fresh machine with no camera and no network.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)

#: Where configs/demo.yaml expects the clip (relative to the repository root).
DEFAULT_PATH = Path("configs/demo/demo.mp4")


def _background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A floor: a vertical gradient, faint tiles and low-amplitude noise."""
    ramp = np.linspace(150, 100, height, dtype=np.float32)[:, None, None]
    floor = np.broadcast_to(ramp * np.array([0.9, 1.0, 1.05], np.float32), (height, width, 3)).copy()
    floor[:: max(8, height // 12)] *= 0.85
    floor[:, :: max(8, width // 16)] *= 0.85
    floor += rng.normal(0, 3, floor.shape).astype(np.float32)
    return np.clip(floor, 0, 255).astype(np.uint8)


def draw_person(frame: np.ndarray, x: float, y: float, radius: int, colour: tuple[int, ...]) -> None:
    """A dark round head at (x, y) on lighter shoulders below it, drawn into ``frame`` in place."""
    centre = (int(x), int(y))
    cv2.ellipse(
        frame,
        (centre[0], centre[1] + 2 * radius),
        (2 * radius, 2 * radius),
        0,
        180,
        360,
        colour,
        -1,
        cv2.LINE_AA,
    )
    cv2.circle(frame, centre, radius, (35, 45, 60), -1, cv2.LINE_AA)


def render_frames(width: int, height: int, frames: int, people: int, seed: int = 0) -> list[np.ndarray]:
    """The clip's frames (BGR uint8): ``people`` walkers with constant velocities, wrapping around."""
    rng = np.random.default_rng(seed)
    background = _background(width, height, rng)
    radius = max(3, round(min(width, height) / 40))
    pos = rng.uniform([0, 0], [width, height], size=(people, 2))
    vel = rng.uniform(-1, 1, size=(people, 2)) * radius * 0.6
    body_colours = rng.integers(40, 220, size=(people, 3))
    out = []
    for _ in range(frames):
        frame = background.copy()
        for (x, y), colour in sorted(zip(pos, body_colours, strict=True), key=lambda item: item[0][1]):
            draw_person(frame, float(x), float(y), radius, tuple(int(c) for c in colour))
        out.append(frame)
        pos = (pos + vel) % [width, height]
    return out


def write_clip(path: str | Path, frames: Iterable[np.ndarray], *, fps: float, size: tuple[int, int]) -> Path:
    """Write ``frames`` (BGR uint8, ``size`` = (width, height)) to ``path`` with OpenCV's ``mp4v`` encoder
    (folders created) and return the path; the one writer of the demo's clips. ``frames`` may be a
    generator: each frame is encoded as it comes, so a long clip is never held in memory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path} with the mp4v codec")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    return path


def make_demo_clip(
    path: str | Path = DEFAULT_PATH,
    *,
    width: int = 640,
    height: int = 360,
    seconds: float = 20.0,
    fps: float = 10.0,
    people: int = 30,
    seed: int = 0,
) -> Path:
    """Write the synthetic clip to ``path`` (folders created) and return the path."""
    frames = render_frames(width, height, max(1, round(seconds * fps)), people, seed)
    return write_clip(path, frames, fps=fps, size=(width, height))
