"""Prometheus metrics of the pipeline, and the reader and worker events that feed them.

Metric names are fixed (the Grafana dashboard and the alert rules use them). Every metric lives in the
:class:`~prometheus_client.CollectorRegistry` passed in; nothing touches the global registry. Labels are
camera and zone ids from the config, never URLs. The frame counters are kept once, in
:class:`~crowdwatch.telemetry.counts.FrameCounts` (registered here as a collector), so the pipeline
reads its own numbers from there and never from the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Gauge, Histogram

from crowdwatch.sinks.base import Result
from crowdwatch.telemetry.counts import DROP_REASONS, FrameCounts

__all__ = ["BATCH_BUCKETS", "DROP_REASONS", "LATENCY_BUCKETS", "PipelineMetrics"]

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


class PipelineMetrics:
    """All crowdwatch metrics; the ``ReaderEvents`` of the camera readers and the ``WorkerEvents`` of
    the worker.

    Args:
        registry: where the metrics are registered (a fresh one per test).
        cameras: the camera ids, so every camera's series exist (at 0) before its first frame.
        zones: camera id -> its zone ids, so zone series exist (at 0) before the first frame.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        cameras: Iterable[str],
        zones: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.registry = registry
        cameras = list(cameras)
        #: The frame counters: read them here (status, final summary), never from the registry.
        self.counts = FrameCounts(cameras)

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
        self.build_info = gauge(
            "crowdwatch_build_info",
            "Always 1; labels describe the build.",
            ("version", "torch", "device", "precision"),
        )
        # Create every camera's series now, so dashboards see 0 rather than nothing.
        for camera in cameras:
            self.people.labels(camera)
            self.people_smoothed.labels(camera)
            self.camera_up_gauge.labels(camera)
            self.latency.labels(camera)
            for zone in (zones or {}).get(camera, ()):
                self.zone_people.labels(camera, zone)
                self.zone_people_smoothed.labels(camera, zone)
                self.zone_alert.labels(camera, zone)

    # -- ReaderEvents --------------------------------------------------------------------------
    def frame_read(self, camera: str) -> None:
        self.counts.add_read(camera)

    def frame_dropped(self, camera: str, reason: str, n: int = 1) -> None:
        self.counts.add_dropped(camera, reason, n)

    def reconnect(self, camera: str) -> None:
        self.counts.add_reconnect(camera)

    def camera_up(self, camera: str, up: bool) -> None:
        self.camera_up_gauge.labels(camera).set(1 if up else 0)

    def frame_captured(self, camera: str, captured_at: float) -> None:
        self.last_frame_ts.labels(camera).set(captured_at)

    # -- worker --------------------------------------------------------------------------------
    def batch_done(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference_seconds.observe(seconds)

    def result_published(self, result: Result) -> None:
        camera = result.camera
        self.counts.add_processed(camera)
        self.people.labels(camera).set(result.count)
        self.latency.labels(camera).observe(result.latency_s)
        if result.smoothed_count is not None:
            self.people_smoothed.labels(camera).set(result.smoothed_count)
        for zone, count in result.zone_counts.items():
            self.zone_people.labels(camera, zone).set(count)
        for zone, smoothed in result.zone_smoothed.items():
            self.zone_people_smoothed.labels(camera, zone).set(smoothed)
        for zone, alert in result.zone_alerts.items():
            self.zone_alert.labels(camera, zone).set(1 if alert else 0)

    def set_build_info(self, *, version: str, torch: str, device: str, precision: str) -> None:
        self.build_info.labels(version, torch, device, precision).set(1)
