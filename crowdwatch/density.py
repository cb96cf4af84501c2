"""Head density over a sliding window of capture time, and its picture (a heatmap over the frame).

:class:`DensityWindow` bins head points into cells of ``cell_px`` x ``cell_px`` source pixels. The
window slides in steps of ``slot_s``: a ring of ``ceil(window_s / slot_s)`` sub-grids, one per step of
capture time, each holding the heads and the frames of its step. When time enters a new step, the
oldest sub-grid is zeroed and reused, so memory is fixed: ``slots x rows x cols x 4`` bytes (float32)
plus one frame counter per slot, e.g. 15 x 68 x 120 x 4 = 478 KiB for a 1920x1080 camera, 16 px cells
and 15 minutes in 1-minute steps. The window covers the current (partial) step and the ``slots - 1``
before it. A capture time further back than the ring (a wall clock stepped back) starts afresh.

Density = heads per frame in a cell (the mean over the window's frames) divided by the cell's area in
the legend's unit: 100 px^2, or m^2 when the camera has a ground scale (``pixels_per_metre``; one scale
for the whole frame, so it is only as good as the view is top-down).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["DensityWindow", "render_heatmap"]

#: Share of a fully dense cell's colour in the blend (the frame keeps the rest).
MAX_ALPHA = 0.65


class DensityWindow:
    """Heads per cell over the last ``window_s`` seconds of capture time, for frames of one size."""

    def __init__(self, width: int, height: int, *, cell_px: int, window_s: float, slot_s: float) -> None:
        if width <= 0 or height <= 0 or cell_px <= 0 or window_s <= 0 or not 0 < slot_s <= window_s:
            raise ValueError(
                "DensityWindow needs width, height, cell_px > 0 and 0 < slot_s <= window_s, but got "
                f"{width}x{height}, cell_px={cell_px}, window_s={window_s}, slot_s={slot_s}"
            )
        self.width, self.height, self.cell_px = width, height, cell_px
        self.window_s, self.slot_s = float(window_s), float(slot_s)
        self.cols, self.rows = math.ceil(width / cell_px), math.ceil(height / cell_px)
        self.slots = math.ceil(window_s / slot_s)
        self._heads = np.zeros((self.slots, self.rows, self.cols), np.float32)
        self._frames = np.zeros(self.slots, np.int64)
        self._slot_ids = np.full(self.slots, np.iinfo(np.int64).min, np.int64)
        self._newest: int | None = None
        # Each cell's area in pixels (cells on the right and bottom edges may be cut by the frame).
        widths = np.minimum(cell_px, width - np.arange(self.cols) * cell_px)
        heights = np.minimum(cell_px, height - np.arange(self.rows) * cell_px)
        self.cell_area_px = np.outer(heights, widths).astype(np.float32)

    @property
    def nbytes(self) -> int:
        """Memory held by the ring (sub-grids, counters and cell areas), in bytes."""
        return self._heads.nbytes + self._frames.nbytes + self._slot_ids.nbytes + self.cell_area_px.nbytes

    @property
    def frames(self) -> int:
        """Frames in the window."""
        return int(self._frames[self._live()].sum())

    def add(self, points: np.ndarray, captured_at: float) -> None:
        """Count one frame's head points (K, 2) x, y, captured at ``captured_at`` (seconds)."""
        slot = math.floor(captured_at / self.slot_s)
        if self._newest is not None and slot <= self._newest - self.slots:
            if slot < self._newest - 2 * self.slots:  # the clock went far back: start afresh
                self.clear()
            else:
                return  # a late frame from a step that has left the window
        i = slot % self.slots
        if self._slot_ids[i] != slot:
            self._heads[i] = 0
            self._frames[i] = 0
            self._slot_ids[i] = slot
        self._newest = slot if self._newest is None else max(self._newest, slot)
        self._frames[i] += 1
        pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        if len(pts):
            col = np.clip((pts[:, 0] // self.cell_px).astype(np.int64), 0, self.cols - 1)
            row = np.clip((pts[:, 1] // self.cell_px).astype(np.int64), 0, self.rows - 1)
            counts = np.bincount(row * self.cols + col, minlength=self.rows * self.cols)
            self._heads[i] += counts.reshape(self.rows, self.cols).astype(np.float32)

    def clear(self) -> None:
        self._heads[:] = 0
        self._frames[:] = 0
        self._slot_ids[:] = np.iinfo(np.int64).min
        self._newest = None

    def density(self, pixels_per_metre: float | None = None) -> np.ndarray:
        """(rows, cols) float32: mean people per 100 px^2 over the window (per m^2 with a scale)."""
        live = self._live()
        frames = int(self._frames[live].sum())
        if frames == 0:
            return np.zeros((self.rows, self.cols), np.float32)
        per_frame = self._heads[live].sum(axis=0) / frames
        if pixels_per_metre:
            area = self.cell_area_px / float(pixels_per_metre) ** 2  # m^2
        else:
            area = self.cell_area_px / 100.0  # units of 100 px^2
        density: np.ndarray = (per_frame / area).astype(np.float32)
        return density

    def _live(self) -> np.ndarray:
        if self._newest is None:
            return np.zeros(self.slots, bool)
        return self._slot_ids > self._newest - self.slots


def _window_text(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def render_heatmap(
    frame: np.ndarray, density: np.ndarray, *, cell_px: int, unit: str, window_s: float, frames: int
) -> np.ndarray:
    """The density's colour map blended over ``frame`` (BGR uint8), with a legend strip below it.

    Colours run from 0 to the grid's maximum (the legend says what the top colour means); the blend
    is stronger where the density is higher, so empty floor keeps the camera's picture.
    """
    height, width = frame.shape[:2]
    peak = float(density.max()) if density.size else 0.0
    norm = density / peak if peak > 0 else np.zeros_like(density)
    rows, cols = density.shape
    big = cv2.resize(norm, (cols * cell_px, rows * cell_px), interpolation=cv2.INTER_LINEAR)[:height, :width]
    big = np.clip(big, 0, 1)
    colours = cv2.applyColorMap((big * 255).astype(np.uint8), cv2.COLORMAP_JET)
    alpha = (MAX_ALPHA * np.sqrt(big))[..., None]
    blended = (frame.astype(np.float32) * (1 - alpha) + colours.astype(np.float32) * alpha).astype(np.uint8)
    return np.vstack([blended, _legend(width, peak, unit, window_s, frames)])


def _legend(width: int, peak: float, unit: str, window_s: float, frames: int) -> np.ndarray:
    """A strip: colour bar from 0 to ``peak``, and what the colours mean."""
    scale = max(0.35, width / 1400)
    thickness = max(1, round(scale * 1.5))
    (_, th), base = cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(4, th // 2)
    bar_h = max(8, th)
    strip = np.full((pad * 4 + bar_h + 2 * (th + base), width, 3), 32, np.uint8)
    bar_x0, bar_x1 = pad, width - pad
    ramp = np.linspace(0, 255, max(1, bar_x1 - bar_x0)).astype(np.uint8)[None, :]
    strip[pad : pad + bar_h, bar_x0:bar_x1] = cv2.applyColorMap(
        np.repeat(ramp, bar_h, axis=0), cv2.COLORMAP_JET
    )
    y = pad * 2 + bar_h + th
    font, white = cv2.FONT_HERSHEY_SIMPLEX, (255, 255, 255)
    top = f"{peak:.3g}"
    (tw, _), _ = cv2.getTextSize(top, font, scale, thickness)
    cv2.putText(strip, "0", (bar_x0, y), font, scale, white, thickness, cv2.LINE_AA)
    cv2.putText(strip, top, (bar_x1 - tw, y), font, scale, white, thickness, cv2.LINE_AA)
    caption = f"people per {unit}, mean over {_window_text(window_s)} ({frames} frames)"
    y += pad + th + base
    cv2.putText(strip, caption, (bar_x0, y), font, scale, white, thickness, cv2.LINE_AA)
    return strip
