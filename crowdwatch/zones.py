"""Polygon zones of one camera: exclusion masks, per-zone counts, smoothed counts and occupancy alerts.

A point belongs to a zone when it lies inside the zone's polygon or on its boundary (the semantics of
``cv2.pointPolygonTest(...) >= 0``; looked up in a :class:`crowdwatch.polygons.PolygonMask` made once
per polygon, with the exact test only for points next to an edge). Points inside an exclusion polygon
(or on its boundary) are never counted: not in the total, not in any zone.

Counts are smoothed over the camera's window of capture times (:class:`crowdwatch.smoothing.WindowMean`;
``window_s = 0``: the raw count). A zone's alert looks at the smoothed count: it is raised once the
count has stayed at or above ``high`` for ``for_s`` seconds of capture time, and cleared once it has
stayed at or below ``low`` for ``for_s``; between the two thresholds it keeps its state (hysteresis),
so a count hovering around one threshold does not flap the alert. With ``for_s = 0`` one frame at
``high`` raises it and one at ``low`` clears it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from crowdwatch.frames import AlertChange
from crowdwatch.polygons import PolygonMask, points_in_any
from crowdwatch.smoothing import WindowMean


@dataclass(frozen=True)
class Zone:
    """One zone of one camera. ``high``/``low`` are both set (alerting zone) or both None."""

    id: str
    polygon: np.ndarray  # (N, 2) float32 x, y in source-frame pixels
    high: float | None = None
    low: float | None = None
    for_s: float = 0.0
    _mask: PolygonMask = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        polygon = np.asarray(self.polygon, dtype=np.float32)
        if polygon.ndim != 2 or polygon.shape[1] != 2 or polygon.shape[0] < 3:
            raise ValueError(
                f"zone {self.id!r}: polygon must have shape (N >= 3, 2), but got shape {polygon.shape}"
            )
        object.__setattr__(self, "polygon", polygon)
        object.__setattr__(self, "_mask", PolygonMask(polygon))
        if (self.high is None) != (self.low is None):
            raise ValueError(
                f"zone {self.id!r}: alert needs both high and low, but got {self.high}/{self.low}"
            )
        if self.high is not None and self.low is not None and not self.low < self.high:
            raise ValueError(
                f"zone {self.id!r}: alert low must be < high, but got low={self.low} high={self.high}"
            )
        if not self.for_s >= 0:
            raise ValueError(f"zone {self.id!r}: for_s must be >= 0, but got {self.for_s}")

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask, one entry per (x, y) row of ``points``: inside or on the boundary."""
        return self._mask.contains(points)


class ZoneAlert:
    """One zone's occupancy alert: thresholds with hysteresis, each held for ``for_s`` of capture time."""

    def __init__(self, zone: str, high: float, low: float, for_s: float = 0.0) -> None:
        self.zone, self.high, self.low, self.for_s = zone, high, low, for_s
        self.raised = False
        self._since: float | None = None  # capture time the pending condition began to hold

    def update(self, count: float, t: float) -> AlertChange | None:
        """Advance with the (smoothed) ``count`` of a frame captured at ``t``; the change it completes."""
        holds = count <= self.low if self.raised else count >= self.high
        if not holds:
            self._since = None
            return None
        if self._since is None or t < self._since:  # (a clock stepped back starts the wait again)
            self._since = t
        if t - self._since < self.for_s:
            return None
        since, self._since = self._since, None
        self.raised = not self.raised
        if self.raised:
            return AlertChange(self.zone, "raised", count, self.high, since, t)
        return AlertChange(self.zone, "cleared", count, self.low, since, t)


@dataclass(frozen=True)
class ZoneReading:
    """What a camera's zones make of one frame's points (zone dicts in zone order).

    ``kept`` marks the points outside every exclusion polygon (the ones counted); ``count`` is their
    number and ``smoothed`` its smoothed value; ``zone_smoothed`` the smoothed zone counts; ``changes``
    the alert transitions this frame completed.
    """

    counts: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, bool] = field(default_factory=dict)  # only zones that have thresholds
    kept: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    count: int = 0
    smoothed: float = 0.0
    zone_smoothed: dict[str, float] = field(default_factory=dict)
    changes: tuple[AlertChange, ...] = ()


class CameraZones:
    """One camera's exclusion polygons, zones, smoothers and alert states.

    Not thread-safe: one worker owns it. ``window_s`` is the smoothing window (0 = raw counts).
    """

    def __init__(
        self,
        zones: Iterable[Zone],
        *,
        exclusions: Iterable[np.ndarray] = (),
        window_s: float = 0.0,
    ) -> None:
        self.zones: tuple[Zone, ...] = tuple(zones)
        ids = [zone.id for zone in self.zones]
        if len(set(ids)) != len(ids):
            raise ValueError(f"zone ids must be unique per camera, but got {ids}")
        self.exclusions: tuple[np.ndarray, ...] = tuple(_polygon(p, "exclusion") for p in exclusions)
        self._exclusion_masks = tuple(PolygonMask(polygon) for polygon in self.exclusions)
        self.window_s = window_s
        self._total = WindowMean(window_s)
        self._smoothers = {zone.id: WindowMean(window_s) for zone in self.zones}
        self._alerts = {
            zone.id: ZoneAlert(zone.id, zone.high, zone.low, zone.for_s)
            for zone in self.zones
            if zone.high is not None and zone.low is not None
        }

    def keep_state_of(self, previous: CameraZones) -> list[str]:
        """Take over ``previous``'s running state for the zones a config reload did not change; returns
        their ids. A zone is unchanged when its polygon, thresholds and the smoothing window are the
        same: it keeps its smoothed count and its alert, with the running ``for_s`` timer. A zone of the
        same id whose polygon, thresholds or window changed starts its smoothing and timer afresh, but
        an alert it had raised stays raised until its (new) condition clears it, so no one is told
        "cleared" by a reload. The camera's total keeps its smoothing when the window is the same."""
        same_window = previous.window_s == self.window_s
        if same_window:
            self._total = previous._total
        kept = []
        old_zones = {zone.id: zone for zone in previous.zones}
        for zone in self.zones:
            old = old_zones.get(zone.id)
            if old is None:
                continue
            same_zone = np.array_equal(old.polygon, zone.polygon) and same_window
            same_alert = (old.high, old.low, old.for_s) == (zone.high, zone.low, zone.for_s)
            if same_zone:
                self._smoothers[zone.id] = previous._smoothers[zone.id]
            old_alert, alert = previous._alerts.get(zone.id), self._alerts.get(zone.id)
            if old_alert is not None and alert is not None:
                if same_zone and same_alert:
                    self._alerts[zone.id] = old_alert
                else:
                    alert.raised = old_alert.raised
            if same_zone and same_alert:
                kept.append(zone.id)
        return kept

    def update(self, points: np.ndarray, captured_at: float = 0.0) -> ZoneReading:
        """Drop excluded ``points``, count the rest per zone, smooth, and advance each zone's alert."""
        points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        kept = (
            ~points_in_any(points, self._exclusion_masks) if self.exclusions else np.ones(len(points), bool)
        )
        counted = points[kept] if self.exclusions else points
        counts = {zone.id: int(zone.contains(counted).sum()) for zone in self.zones}
        smoothed = {zid: self._smoothers[zid].update(captured_at, n) for zid, n in counts.items()}
        changes = []
        for zone_id, alert in self._alerts.items():
            change = alert.update(smoothed[zone_id], captured_at)
            if change is not None:
                changes.append(change)
        return ZoneReading(
            counts=counts,
            alerts={zone_id: alert.raised for zone_id, alert in self._alerts.items()},
            kept=kept,
            count=len(counted),
            smoothed=self._total.update(captured_at, len(counted)),
            zone_smoothed=smoothed,
            changes=tuple(changes),
        )


def _polygon(polygon: np.ndarray | Sequence[Sequence[float]], what: str) -> np.ndarray:
    array = np.asarray(polygon, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] < 3:
        raise ValueError(f"{what} polygon must have shape (N >= 3, 2), but got shape {array.shape}")
    return array


class AlertSpec(Protocol):
    """A zone's alert thresholds as the config gives them (``crowdwatch.config.AlertSettings``)."""

    @property
    def high(self) -> float: ...

    @property
    def low(self) -> float: ...

    @property
    def for_s(self) -> float: ...


class ZoneSpec(Protocol):
    """One zone as the config gives it (``crowdwatch.config.ZoneConfig``)."""

    @property
    def id(self) -> str: ...

    @property
    def polygon(self) -> Sequence[Sequence[float]]: ...

    @property
    def alert(self) -> AlertSpec | None: ...


def zones_from_config(
    zone_configs: Sequence[ZoneSpec],
    *,
    exclusions: Iterable[Sequence[Sequence[float]]] = (),
    window_s: float = 0.0,
) -> CameraZones:
    """Build a camera's zones from its validated ``zones``, ``exclude`` and ``smoothing`` config."""
    zones = []
    for cfg in zone_configs:
        alert = cfg.alert
        zones.append(
            Zone(
                id=cfg.id,
                polygon=np.asarray(cfg.polygon, dtype=np.float32),
                high=None if alert is None else float(alert.high),
                low=None if alert is None else float(alert.low),
                for_s=0.0 if alert is None else float(alert.for_s),
            )
        )
    polygons = [np.asarray(polygon, dtype=np.float32) for polygon in exclusions]
    return CameraZones(zones, exclusions=polygons, window_s=window_s)
