"""Config sections for what crowdwatch makes of the counts: smoothing, exclusion masks and heatmaps.

``defaults``/cameras: ``smoothing: {window_s}``; cameras: ``exclude: [{polygon: ...}]`` and
``pixels_per_metre``; ``output.heatmaps``. Kept beside :mod:`crowdwatch.config.schema`, which imports
them into its sections.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from crowdwatch.config.base import Polygon, Section

#: Most sub-grids in a heatmap's ring (the memory bound): e.g. 24 h in 1-minute slots.
MAX_HEATMAP_SLOTS = 1440


class SmoothingSettings(Section):
    window_s: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="smoothed counts: time-weighted mean over this many seconds of capture time; 0 = raw",
    )


class ExcludeRegion(Section):
    polygon: Polygon = Field(
        description="[[x, y], ...] in source-frame pixels; points inside or on it are never counted"
    )


class HeatmapSettings(Section):
    enabled: bool = Field(False, description="write heatmaps/<camera>.jpg: head density over a window")
    window_s: float = Field(900.0, gt=0, le=86_400, description="how much capture time the heatmap covers")
    slot_s: float = Field(
        60.0, gt=0, le=86_400, description="the window slides in steps of this (one sub-grid per step)"
    )
    cell_px: int = Field(16, ge=2, le=256, description="density grid cell size, in source-frame pixels")
    interval_s: float = Field(60.0, gt=0, le=86_400, description="rewrite each camera's heatmap this often")
    npy: bool = Field(False, description="also write the raw density grid as heatmaps/<camera>.npy")

    @model_validator(mode="after")
    def _bounded_ring(self) -> HeatmapSettings:
        if self.slot_s > self.window_s:
            raise ValueError(f"slot_s ({self.slot_s}) must be <= window_s ({self.window_s})")
        if math.ceil(self.window_s / self.slot_s) > MAX_HEATMAP_SLOTS:
            raise ValueError(
                f"window_s / slot_s must be at most {MAX_HEATMAP_SLOTS} sub-grids, "
                f"but got {self.window_s} / {self.slot_s}"
            )
        return self
