"""Flow of one camera: its tracks, the crossings of its counting lines, and the time spent in zones.

:class:`CameraFlow` is fed each frame's counted points (after exclusions) and capture time. It runs the
camera's :class:`~crowdwatch.tracking.PointTracker`, advances every :class:`~crowdwatch.lines.LineCounter`
with the confirmed tracks that moved, and keeps, per zone with dwell tracking, when each track entered.

Dwell: a track is in a zone from the first frame its point is inside to the last frame it is inside;
its dwell (last - first, capture seconds, so short by under one frame interval) is reported when it is
first seen outside the zone again or when the track ends. ``dwell_alert_s``: the number of tracks in
the zone now whose stay so far is at least that long.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from crowdwatch.frames import Dwell, FlowReading
from crowdwatch.lines import CountingLine, LineCounter
from crowdwatch.logthrottle import LogThrottle
from crowdwatch.tracking import PointTracker, TrackerSettings, TrackStep

__all__ = ["CameraFlow", "Dwell", "FlowReading", "counting_lines", "flow_from_config"]

logger = logging.getLogger(__name__)


class Zone(Protocol):
    """A zone whose stays are measured (:class:`crowdwatch.zones.Zone`): its id and its membership test."""

    @property
    def id(self) -> str: ...

    def contains(self, points: np.ndarray) -> np.ndarray: ...


class CameraFlow:
    """One camera's tracker, line counters and zone stays. Not thread-safe: one worker owns it.

    ``dwell_zones`` are the zones whose stays are measured; ``dwell_alert_s`` maps some of them to the
    stay after which a track counts as lingering.
    """

    def __init__(
        self,
        lines: Sequence[CountingLine] = (),
        *,
        dwell_zones: Sequence[Zone] = (),
        dwell_alert_s: Mapping[str, float] | None = None,
        tracker: TrackerSettings | None = None,
        name: str = "",
    ) -> None:
        self.name = name  # the camera, for log lines
        self._log = LogThrottle(logger)  # a camera that stays too slow would say so on every frame
        self.tracker = PointTracker(tracker)
        self.counters = [LineCounter(line) for line in lines]
        ids = [line.id for line in lines]
        if len(set(ids)) != len(ids):
            raise ValueError(f"line ids must be unique per camera, but got {ids}")
        self.dwell_zones = tuple(dwell_zones)
        self.dwell_alert_s = dict(dwell_alert_s or {})
        self._inside: dict[str, dict[int, tuple[float, float]]] = {z.id: {} for z in self.dwell_zones}

    @property
    def enabled(self) -> bool:
        """Whether anything needs tracks (lines or zones whose stays are measured)."""
        return bool(self.counters or self.dwell_zones)

    def update(self, points: np.ndarray, t: float) -> FlowReading:
        step = self.tracker.update(points, t)
        if step.gap_s:
            self._log.log(
                "gap",
                logging.WARNING,
                "%s: %.1f s between processed frames, more than tracking.max_gap_s (%g s): heads are not "
                "linked across it, so crossings and stays restart; process this camera faster",
                self.name,
                step.gap_s,
                self.tracker.settings.max_gap_s,
            )
        crossings = []
        for counter in self.counters:
            crossings += counter.advance(step.ids, step.previous, step.positions, t)
            counter.forget(step.ended)
        dwells = self._dwell(step, t)
        lingering = {
            zone: sum(1 for first, _ in self._inside[zone].values() if t - first >= limit)
            for zone, limit in self.dwell_alert_s.items()
        }
        confirmed = np.flatnonzero(self.tracker.confirmed).tolist()
        return FlowReading(
            crossings=tuple(sorted(crossings, key=lambda c: c.track)),
            totals={c.line.id: (c.totals["in"], c.totals["out"]) for c in self.counters},
            dwells=tuple(dwells),
            lingering=lingering,
            tails=tuple(tuple(self.tracker.tails[row]) for row in confirmed),
            gap_s=step.gap_s,
        )

    def _dwell(self, step: TrackStep, t: float) -> list[Dwell]:
        dwells: list[Dwell] = []
        if not self.dwell_zones:
            return dwells
        tracker = self.tracker
        ids = step.ids.tolist()
        # a track confirmed on this frame was already there on its first frame(s): its stay starts then
        row_of = {track: row for row, track in enumerate(tracker.ids.tolist())}
        rows = [row_of[track] for track in ids]
        fresh = (tracker.hits[rows] == tracker.settings.min_hits).tolist()
        born = tracker.born_at[rows].tolist()
        ended = step.ended.tolist()
        for zone in self.dwell_zones:
            inside = self._inside[zone.id]
            flags = zone.contains(step.positions.astype(np.float32)).tolist() if ids else []
            was_in = zone.contains(step.previous.astype(np.float32)).tolist() if ids else []
            for k, track in enumerate(ids):
                if flags[k]:
                    start = born[k] if fresh[k] and was_in[k] else t
                    first = inside.get(track, (start, t))[0]
                    inside[track] = (first, t)
                elif track in inside:
                    first, last = inside.pop(track)
                    dwells.append(Dwell(zone.id, track, last - first))
            for track in ended:
                if track in inside:
                    first, last = inside.pop(track)
                    dwells.append(Dwell(zone.id, track, last - first))
        return dwells


class LineSpec(Protocol):
    """One counting line as the config gives it (``crowdwatch.config.flow.LineConfig``)."""

    @property
    def id(self) -> str: ...

    @property
    def points(self) -> Sequence[Sequence[float]]: ...

    @property
    def in_name(self) -> str: ...

    @property
    def out_name(self) -> str: ...

    @property
    def band_px(self) -> float: ...


class TrackingSpec(Protocol):
    @property
    def max_speed_px_s(self) -> float: ...

    @property
    def max_missed(self) -> int: ...

    @property
    def max_gap_s(self) -> float: ...


class DwellZoneSpec(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def dwell(self) -> bool: ...

    @property
    def dwell_alert_s(self) -> float | None: ...


def counting_lines(specs: Sequence[LineSpec]) -> list[CountingLine]:
    """A camera's validated ``lines`` config as :class:`CountingLine` s."""
    return [
        CountingLine(
            spec.id,
            (float(spec.points[0][0]), float(spec.points[0][1])),
            (float(spec.points[1][0]), float(spec.points[1][1])),
            spec.in_name,
            spec.out_name,
            float(spec.band_px),
        )
        for spec in specs
    ]


def flow_from_config(
    lines: Sequence[LineSpec],
    tracking: TrackingSpec,
    zone_specs: Sequence[DwellZoneSpec],
    zones: Sequence[Zone],
    name: str = "",
) -> CameraFlow:
    """A camera's flow from its ``lines``, ``tracking`` and zones (``zones``: the built ones, same order)."""
    by_id = {zone.id: zone for zone in zones}
    dwell = [spec for spec in zone_specs if spec.dwell or spec.dwell_alert_s is not None]
    return CameraFlow(
        counting_lines(lines),
        dwell_zones=[by_id[spec.id] for spec in dwell],
        dwell_alert_s={spec.id: spec.dwell_alert_s for spec in dwell if spec.dwell_alert_s is not None},
        tracker=TrackerSettings(
            max_speed_px_s=tracking.max_speed_px_s,
            max_missed=tracking.max_missed,
            max_gap_s=tracking.max_gap_s,
        ),
        name=name,
    )
