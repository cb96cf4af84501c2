"""Prometheus metrics of the pipeline, and the reader and worker events that feed them.

Metric names are fixed (the Grafana dashboard and the alert rules use them). Every metric lives in the
:class:`~prometheus_client.CollectorRegistry` passed in; nothing touches the global registry. Labels are
camera and zone ids from the config, never URLs. The frame counters are kept once, in
:class:`~crowdwatch.telemetry.counts.FrameCounts` (registered here as a collector), so the pipeline
reads its own numbers from there and never from the registry.

The people gauges (``crowdwatch_people``, ``crowdwatch_people_smoothed``, ``crowdwatch_zone_people``,
``crowdwatch_zone_people_smoothed``) exist only while their camera is up: they appear with its first
processed frame, and are removed when it goes down (not set to 0, not left at the last count), so a graph
shows a gap, ``absent()`` sees it, and no alert fires on a dead camera's last value.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Gauge, Histogram, Info

from crowdwatch.frames import Result
from crowdwatch.telemetry.counts import DROP_REASONS, FrameCounts
from crowdwatch.telemetry.flow_metrics import FlowMetrics

__all__ = ["BATCH_BUCKETS", "DROP_REASONS", "LATENCY_BUCKETS", "PipelineMetrics"]

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


class PipelineMetrics:
    """All crowdwatch metrics; the ``ReaderEvents`` of the camera readers and the ``WorkerEvents`` of
    the worker.

    Args:
        registry: where the metrics are registered (a fresh one per test).
        cameras: the camera ids, so every camera's ``camera_up`` (0) and alert series exist before its
            first frame (its people gauges appear with that frame).
        zones: camera id -> its zone ids.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        cameras: Iterable[str],
        zones: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.registry = registry
        cameras = list(cameras)
        self._zones = {camera: tuple((zones or {}).get(camera, ())) for camera in cameras}
        self._up: set[str] = set()  # cameras up now: only their results set the people gauges
        self._up_lock = threading.Lock()  # a result and its camera going down never interleave
        self._build: dict[str, str] = {}
        #: The frame counters: read them here (status, final summary), never from the registry.
        self.counts = FrameCounts(cameras)
        #: Line crossings and zone stays (set by the pipeline when any camera tracks heads).
        self.flow: FlowMetrics | None = None

        def gauge(name: str, doc: str, labels: Sequence[str]) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        cam = ("camera",)
        self.people = gauge("crowdwatch_people", "People in the camera's latest processed frame.", cam)
        self.zone_people = gauge("crowdwatch_zone_people", "People counted in a zone.", ("camera", "zone"))
        self.people_smoothed = gauge(
            "crowdwatch_people_smoothed",
            "People in the camera, time-weighted mean over its smoothing window (smoothing.window_s).",
            cam,
        )
        self.zone_people_smoothed = gauge(
            "crowdwatch_zone_people_smoothed",
            "People in a zone, time-weighted mean over the camera's smoothing window.",
            ("camera", "zone"),
        )
        self.zone_alert = gauge(
            "crowdwatch_zone_alert", "1 while a zone's occupancy alert is raised.", ("camera", "zone")
        )
        registry.register(self.counts)  # crowdwatch_frames_{read,processed,dropped}_total, reconnects_total
        self.camera_up_gauge = gauge("crowdwatch_camera_up", "1 while the camera delivers frames.", cam)
        self.last_frame_ts = gauge(
            "crowdwatch_last_frame_timestamp_seconds", "Wall-clock capture time of the last frame.", cam
        )
        self.inference_seconds = Histogram(
            "crowdwatch_inference_seconds",
            "Model time per batch.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.latency = Histogram(
            "crowdwatch_end_to_end_latency_seconds",
            "Capture to results published, per frame.",
            cam,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "crowdwatch_batch_size", "Frames per model batch.", buckets=BATCH_BUCKETS, registry=registry
        )
        # crowdwatch_build_info{site, version, torch, device, precision} 1
        self.build_info = Info("crowdwatch_build", "The build and the site it serves.", registry=registry)
        # Create every camera's series now, so dashboards see 0 rather than nothing (not the people
        # gauges: a camera that never delivered a frame has no count).
        for camera in cameras:
            self.camera_up_gauge.labels(camera)
            self.latency.labels(camera)
            for zone in self._zones[camera]:
                self.zone_alert.labels(camera, zone)

    # -- ReaderEvents --------------------------------------------------------------------------
    def frame_read(self, camera: str) -> None:
        self.counts.add_read(camera)

    def frame_dropped(self, camera: str, reason: str, n: int = 1) -> None:
        self.counts.add_dropped(camera, reason, n)

    def reconnect(self, camera: str) -> None:
        self.counts.add_reconnect(camera)

    def camera_up(self, camera: str, up: bool) -> None:
        with self._up_lock:
            self.camera_up_gauge.labels(camera).set(1 if up else 0)
            if up:
                self._up.add(camera)
                return
            self._up.discard(camera)
            self.people.remove(camera)
            self.people_smoothed.remove(camera)
            for zone in self._zones.get(camera, ()):
                self.zone_people.remove(camera, zone)
                self.zone_people_smoothed.remove(camera, zone)

    def frame_captured(self, camera: str, captured_at: float) -> None:
        self.last_frame_ts.labels(camera).set(captured_at)

    # -- worker --------------------------------------------------------------------------------
    def batch_done(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference_seconds.observe(seconds)

    def result_published(self, result: Result) -> None:
        camera = result.camera
        self.counts.add_processed(camera)
        self.latency.labels(camera).observe(result.latency_s)
        with self._up_lock:
            if camera in self._up:  # not a frame taken before its camera went down
                self._set_people(result)
        for zone, alert in result.zone_alerts.items():
            self.zone_alert.labels(camera, zone).set(1 if alert else 0)
        if self.flow is not None:
            self.flow.observe(result)

    def _set_people(self, result: Result) -> None:
        camera = result.camera
        self.people.labels(camera).set(result.count)
        if result.smoothed_count is not None:
            self.people_smoothed.labels(camera).set(result.smoothed_count)
        for zone, count in result.zone_counts.items():
            self.zone_people.labels(camera, zone).set(count)
        for zone, smoothed in result.zone_smoothed.items():
            self.zone_people_smoothed.labels(camera, zone).set(smoothed)

    # -- config reload -------------------------------------------------------------------------
    def set_zones(self, camera: str, zones: Sequence[str]) -> None:
        """A camera added, or its zones changed, by a reload (call on the worker's thread, between
        results): the series of zones it no longer has go, new zones' alert series start at 0."""
        with self._up_lock:
            old = self._zones.get(camera, ())
            self._zones[camera] = tuple(zones)
            for zone in old:
                if zone not in zones:
                    for gauge in (self.zone_people, self.zone_people_smoothed, self.zone_alert):
                        gauge.remove(camera, zone)  # (client_python ignores a series it never had)
        self.counts.add_camera(camera)
        self.camera_up_gauge.labels(camera)
        self.latency.labels(camera)
        for zone in zones:
            self.zone_alert.labels(camera, zone)

    def remove_camera(self, camera: str) -> None:
        """A camera removed by a reload (after its reader stopped and its last result was published):
        every series labelled with it leaves /metrics."""
        with self._up_lock:
            self._up.discard(camera)
            zones = self._zones.pop(camera, ())
            for gauge in (self.people, self.people_smoothed, self.camera_up_gauge, self.last_frame_ts):
                gauge.remove(camera)
            self.latency.remove(camera)
            for zone in zones:
                for gauge in (self.zone_people, self.zone_people_smoothed, self.zone_alert):
                    gauge.remove(camera, zone)
        self.counts.remove(camera)

    def set_build_info(self, **labels: str) -> None:
        """Add labels to ``crowdwatch_build_info`` (site and version at start, the rest once the model
        is loaded: device, precision, torch)."""
        self._build.update(labels)
        self.build_info.info(self._build)
