"""Polygon zones: per-zone people counts and an occupancy alert with hysteresis.

A point belongs to a zone when it lies inside the zone's polygon or on its boundary
(``cv2.pointPolygonTest(...) >= 0``). A zone's alert is raised when its count reaches ``high`` and
cleared only when the count falls to ``low`` or below, so a count hovering around one threshold does
not flap the alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np


@dataclass(frozen=True)
class Zone:
    """One zone of one camera. ``high``/``low`` are both set (alerting zone) or both None."""

    id: str
    polygon: np.ndarray  # (N, 2) float32 x, y in source-frame pixels
    high: float | None = None
    low: float | None = None

    def __post_init__(self) -> None:
        polygon = np.asarray(self.polygon, dtype=np.float32)
        if polygon.ndim != 2 or polygon.shape[1] != 2 or polygon.shape[0] < 3:
            raise ValueError(
                f"zone {self.id!r}: polygon must have shape (N >= 3, 2), but got shape {polygon.shape}"
            )
        object.__setattr__(self, "polygon", polygon)
        if (self.high is None) != (self.low is None):
            raise ValueError(
                f"zone {self.id!r}: alert needs both high and low, but got {self.high}/{self.low}"
            )
        if self.high is not None and self.low is not None and not self.low < self.high:
            raise ValueError(
                f"zone {self.id!r}: alert low must be < high, but got low={self.low} high={self.high}"
            )

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask, one entry per (x, y) row of ``points``: inside or on the boundary."""
        points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        contour = self.polygon.reshape(-1, 1, 2)
        return np.fromiter(
            (cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points),
            dtype=bool,
            count=len(points),
        )


@dataclass(frozen=True)
class ZoneReading:
    """Counts and alert states of a camera's zones for one frame, in zone order."""

    counts: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, bool] = field(default_factory=dict)  # only zones that have thresholds


class CameraZones:
    """The zones of one camera and their alert states (not thread-safe: one worker owns it)."""

    def __init__(self, zones: Iterable[Zone]) -> None:
        self.zones: tuple[Zone, ...] = tuple(zones)
        ids = [zone.id for zone in self.zones]
        if len(set(ids)) != len(ids):
            raise ValueError(f"zone ids must be unique per camera, but got {ids}")
        self._alerts = {zone.id: False for zone in self.zones if zone.high is not None}

    def update(self, points: np.ndarray) -> ZoneReading:
        """Count ``points`` per zone and advance each zone's alert state."""
        counts = {zone.id: int(zone.contains(points).sum()) for zone in self.zones}
        for zone in self.zones:
            if zone.high is None or zone.low is None:
                continue
            if counts[zone.id] >= zone.high:
                self._alerts[zone.id] = True
            elif counts[zone.id] <= zone.low:
                self._alerts[zone.id] = False
        return ZoneReading(counts=counts, alerts=dict(self._alerts))


class AlertSpec(Protocol):
    """A zone's alert thresholds as the config gives them (``crowdwatch.config.AlertSettings``)."""

    @property
    def high(self) -> float: ...

    @property
    def low(self) -> float: ...


class ZoneSpec(Protocol):
    """One zone as the config gives it (``crowdwatch.config.ZoneConfig``)."""

    @property
    def id(self) -> str: ...

    @property
    def polygon(self) -> Sequence[Sequence[float]]: ...

    @property
    def alert(self) -> AlertSpec | None: ...


def zones_from_config(zone_configs: Sequence[ZoneSpec]) -> CameraZones:
    """Build a camera's zones from its validated ``zones`` config section."""
    zones = []
    for cfg in zone_configs:
        alert = cfg.alert
        zones.append(
            Zone(
                id=cfg.id,
                polygon=np.asarray(cfg.polygon, dtype=np.float32),
                high=None if alert is None else float(alert.high),
                low=None if alert is None else float(alert.low),
            )
        )
    return CameraZones(zones)
