"""Heatmap sink: per camera, where heads were over a sliding window, as ``heatmaps/<camera>.jpg``.

Each result's head points (exclusions already removed by the worker) go into the camera's
:class:`~crowdwatch.density.DensityWindow` at their capture time. Every ``interval_s`` (and at close)
the camera's density is drawn over its latest frame with a legend and written atomically (a reader
sees the old or the new file, never half of one); with ``npy`` the raw grid goes beside it as
``<camera>.npy`` (float32, rows x cols, people per 100 px^2 or per m^2; cell (r, c) covers
x in [c * cell_px, (c + 1) * cell_px), y likewise). A camera whose frame size changes starts afresh.

Memory per camera: the ring of sub-grids (``DensityWindow.nbytes``, logged when the camera's grid is
made) plus a reference to its latest frame.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.density import DensityWindow, render_heatmap
from crowdwatch.drawing import draw_exclusions
from crowdwatch.fileio import write_atomic
from crowdwatch.frames import Result
from crowdwatch.sinks.base import SinkBase

logger = logging.getLogger(__name__)

JPEG_QUALITY = 85


class HeatmapSink(SinkBase):
    """Density heatmaps per camera, rewritten every ``interval_s`` (monotonic ``clock``) and at close.

    ``pixels_per_metre`` maps a camera to its ground scale (legend in people/m^2); ``exclusions`` maps
    a camera to its exclusion polygons, hatched on the picture as on the snapshots.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        window_s: float = 900.0,
        slot_s: float = 60.0,
        cell_px: int = 16,
        interval_s: float = 60.0,
        npy: bool = False,
        pixels_per_metre: Mapping[str, float | None] | None = None,
        exclusions: Mapping[str, Sequence[np.ndarray]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, but got {interval_s}")
        self.directory = Path(directory)
        self.window_s, self.slot_s, self.cell_px = window_s, slot_s, cell_px
        self.interval_s = interval_s
        self.npy = npy
        self._scales = dict(pixels_per_metre or {})
        self._exclusions = {camera: list(p) for camera, p in (exclusions or {}).items()}
        self._clock = clock
        self._grids: dict[str, DensityWindow] = {}
        self._latest: dict[str, np.ndarray] = {}
        self._last_write: dict[str, float] = {}

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def image_path(self, camera: str) -> Path:
        return self.directory / f"{camera}.jpg"

    def grid(self, camera: str) -> DensityWindow | None:
        """``camera``'s density window (None before its first frame)."""
        return self._grids.get(camera)

    def grid_path(self, camera: str) -> Path:
        return self.directory / f"{camera}.npy"

    def write(self, result: Result) -> None:
        camera = result.camera
        height, width = result.image.shape[:2]
        grid = self._grids.get(camera)
        if grid is None or (grid.width, grid.height) != (width, height):
            grid = DensityWindow(
                width, height, cell_px=self.cell_px, window_s=self.window_s, slot_s=self.slot_s
            )
            self._grids[camera] = grid
            self._last_write.setdefault(camera, self._clock())
            logger.info(
                "%s: heatmap grid %dx%d cells of %d px, %d sub-grids of %g s: %.0f KiB",
                camera,
                grid.cols,
                grid.rows,
                self.cell_px,
                grid.slots,
                self.slot_s,
                grid.nbytes / 1024,
            )
        grid.add(result.points, result.captured_at)
        self._latest[camera] = result.image
        self.tick()

    def tick(self) -> None:
        now = self._clock()
        for camera in self._grids:
            if now - self._last_write.get(camera, now) >= self.interval_s:
                self.flush(camera)

    def set_cameras(
        self,
        pixels_per_metre: Mapping[str, float | None],
        exclusions: Mapping[str, Sequence[np.ndarray]],
        removed: Sequence[str] = (),
    ) -> None:
        """A config reload (on the sink thread): scales and exclusions from the next picture on (every
        kept camera keeps its window); a removed camera's heatmap is written one last time and its
        window dropped."""
        for camera in removed:  # its last picture, drawn as it was configured
            if camera in self._grids:
                self.flush(camera)
                del self._grids[camera], self._latest[camera]
            self._last_write.pop(camera, None)
        self._scales = dict(pixels_per_metre)
        self._exclusions = {camera: list(p) for camera, p in exclusions.items()}

    def close(self) -> None:
        for camera in self._grids:
            self.flush(camera)

    def flush(self, camera: str) -> None:
        """Write ``camera``'s heatmap (and grid) now."""
        self._last_write[camera] = self._clock()
        grid, frame = self._grids[camera], self._latest[camera]
        scale = self._scales.get(camera)
        density = grid.density(scale)
        picture = render_heatmap(
            draw_exclusions(frame.copy(), self._exclusions.get(camera, ())),
            density,
            cell_px=grid.cell_px,
            unit="m^2" if scale else "100 px^2",
            window_s=self.window_s,
            frames=grid.frames,
        )
        ok, encoded = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"{camera}: JPEG encoding of a heatmap failed")
        write_atomic(self.image_path(camera), encoded.tobytes())
        if self.npy:
            buffer = io.BytesIO()
            np.save(buffer, density, allow_pickle=False)
            write_atomic(self.grid_path(camera), buffer.getvalue())
