"""The frame record that crosses from a camera reader thread to the worker."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Frame"]


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured image of one camera.

    ``image`` is (H, W, 3) uint8 BGR, owned by the frame from then on: consumers treat it as
    read-only and draw on a copy. ``index`` counts the frames the reader kept (after sampling), from 0
    for the reader's life, across reconnects. ``captured_at`` is wall-clock ``time.time()`` taken when
    the frame came out of the stream (for CSV timestamps); ``monotonic`` is ``time.monotonic()`` at the
    same moment (for latencies and staleness, immune to clock steps).
    """

    camera: str
    image: np.ndarray
    index: int
    captured_at: float
    monotonic: float

    def __post_init__(self) -> None:
        if not isinstance(self.camera, str) or not self.camera:
            raise ValueError(f"camera must be a non-empty str, but got {self.camera!r}")
        image = self.image
        if not isinstance(image, np.ndarray):
            raise TypeError(f"image must be a np.ndarray, but got {type(image).__name__}")
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"image must have shape (H, W, 3) with H, W > 0, but got shape {image.shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"image must have dtype uint8 (BGR), but got dtype {image.dtype}")
        if isinstance(self.index, bool) or not isinstance(self.index, (int, np.integer)) or self.index < 0:
            raise ValueError(f"index must be an int >= 0, but got {self.index!r}")
        for name in ("captured_at", "monotonic"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite float, but got {value!r}")
        if self.captured_at <= 0:
            raise ValueError(f"captured_at must be a time.time() value > 0, but got {self.captured_at!r}")

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def __repr__(self) -> str:  # the default would print the whole array
        return (
            f"Frame(camera={self.camera!r}, index={self.index}, shape={self.image.shape}, "
            f"captured_at={self.captured_at:.3f})"
        )
