"""Prometheus metrics of flow: line crossings, time spent in zones, heads lingering in zones.

- ``crowdwatch_line_crossings_total{camera, line, direction}``: crossings since the start, ``direction``
  the line's configured ``in``/``out`` name; every series exists (at 0) from the start.
- ``crowdwatch_zone_dwell_seconds{camera, zone}``: a histogram of stays, each observed when its track
  leaves the zone or ends (zones with ``dwell`` or ``dwell_alert_s``).
- ``crowdwatch_zone_lingering{camera, zone}``: tracked heads inside for at least ``dwell_alert_s`` now.

Fed by :meth:`FlowMetrics.observe` with each published result (``PipelineMetrics.result_published``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from crowdwatch.frames import Result

__all__ = ["DWELL_BUCKETS", "FlowMetrics"]

#: Seconds: from passing through to staying an hour.
DWELL_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class FlowMetrics:
    """``lines``: camera -> [(line id, in name, out name)]; ``dwell_zones``: camera -> zone ids whose
    stays are measured; ``lingering_zones``: camera -> zone ids with ``dwell_alert_s``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        lines: Mapping[str, Sequence[tuple[str, str, str]]],
        dwell_zones: Mapping[str, Sequence[str]] | None = None,
        lingering_zones: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._names = {
            (camera, line): {"in": in_name, "out": out_name}
            for camera, specs in lines.items()
            for line, in_name, out_name in specs
        }
        self.crossings = Counter(
            "crowdwatch_line_crossings",
            "Tracked heads that crossed a counting line, by the line's direction name.",
            ("camera", "line", "direction"),
            registry=registry,
        )
        self.dwell = Histogram(
            "crowdwatch_zone_dwell_seconds",
            "Time a tracked head stayed in a zone (observed when it leaves or its track ends).",
            ("camera", "zone"),
            buckets=DWELL_BUCKETS,
            registry=registry,
        )
        self.lingering = Gauge(
            "crowdwatch_zone_lingering",
            "Tracked heads in a zone for at least its dwell_alert_s now.",
            ("camera", "zone"),
            registry=registry,
        )
        for (camera, line), names in self._names.items():
            for name in names.values():
                self.crossings.labels(camera, line, name)
        self._zones: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
            camera: (
                tuple((dwell_zones or {}).get(camera, ())),
                tuple((lingering_zones or {}).get(camera, ())),
            )
            for camera in {*(dwell_zones or {}), *(lingering_zones or {})}
        }
        for camera, zones in (dwell_zones or {}).items():
            for zone in zones:
                self.dwell.labels(camera, zone)
        for camera, zones in (lingering_zones or {}).items():
            for zone in zones:
                self.lingering.labels(camera, zone)

    def set_camera(
        self,
        camera: str,
        lines: Sequence[tuple[str, str, str]],
        dwell: Sequence[str],
        lingering: Sequence[str],
    ) -> None:
        """A camera added or changed by a reload: its series are those of its new lines and zones (the old
        ones go; a kept line's counter keeps counting)."""
        self.remove_camera(camera, keep=[line for line, _, _ in lines])
        for line, in_name, out_name in lines:
            self._names[(camera, line)] = {"in": in_name, "out": out_name}
            for name in (in_name, out_name):
                self.crossings.labels(camera, line, name)
        for zone in dwell:
            self.dwell.labels(camera, zone)
        for zone in lingering:
            self.lingering.labels(camera, zone)
        self._zones[camera] = (tuple(dwell), tuple(lingering))

    def remove_camera(self, camera: str, keep: Sequence[str] = ()) -> None:
        """A camera removed by a reload: its series leave /metrics (but the lines in ``keep``)."""
        for key in [key for key in self._names if key[0] == camera and key[1] not in keep]:
            for name in self._names.pop(key).values():
                self.crossings.remove(camera, key[1], name)
        dwell, lingering = self._zones.pop(camera, ((), ()))
        for zone in dwell:
            self.dwell.remove(camera, zone)
        for zone in lingering:
            self.lingering.remove(camera, zone)

    def observe(self, result: Result) -> None:
        flow = result.flow
        if flow is None:
            return
        for crossing in flow.crossings:
            self.crossings.labels(result.camera, crossing.line, crossing.name).inc()
        for dwell in flow.dwells:
            self.dwell.labels(result.camera, dwell.zone).observe(dwell.seconds)
        for zone, n in flow.lingering.items():
            self.lingering.labels(result.camera, zone).set(n)
