"""Prometheus metrics of the pipeline, the reader events that feed them, and the /metrics + /healthz server.

Metric names are fixed (the Grafana dashboard and the alert rules use them). Every metric lives in the
:class:`~prometheus_client.CollectorRegistry` passed in; nothing touches the global registry. Labels are
camera and zone ids from the config, never URLs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from crowdwatch.sinks.base import Result

logger = logging.getLogger(__name__)

DROP_REASONS = ("superseded", "sink_overload", "decode_error")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


class PipelineMetrics:
    """All crowdwatch metrics; also a ``ReaderEvents`` implementation for the camera readers.

    Args:
        registry: where the metrics are registered (a fresh one per test).
        cameras: camera id -> seconds after which a camera without a new frame is stale (/healthz).
        zones: camera id -> its zone ids, so zone series exist (at 0) before the first frame.
        clock: monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        cameras: Mapping[str, float],
        zones: Mapping[str, Sequence[str]] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.stale_after_s = dict(cameras)
        self._clock = clock
        self._lock = threading.Lock()
        self._last_frame: dict[str, float] = {}
        self._up: dict[str, bool] = {camera: False for camera in cameras}

        def counter(name: str, doc: str, labels: Sequence[str]) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def gauge(name: str, doc: str, labels: Sequence[str]) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        cam = ("camera",)
        self.people = gauge("crowdwatch_people", "People in the camera's latest processed frame.", cam)
        self.zone_people = gauge("crowdwatch_zone_people", "People counted in a zone.", ("camera", "zone"))
        self.zone_alert = gauge(
            "crowdwatch_zone_alert", "1 while a zone's occupancy alert is raised.", ("camera", "zone")
        )
        self.frames_read = counter("crowdwatch_frames_read_total", "Frames decoded from the camera.", cam)
        self.frames_processed = counter(
            "crowdwatch_frames_processed_total", "Frames run through the model.", cam
        )
        self.frames_dropped = counter(
            "crowdwatch_frames_dropped_total", "Frames or results dropped, by reason.", ("camera", "reason")
        )
        self.reconnects = counter("crowdwatch_reconnects_total", "Reconnection attempts to the camera.", cam)
        self.camera_up_gauge = gauge("crowdwatch_camera_up", "1 while the camera delivers frames.", cam)
        self.last_frame_ts = gauge(
            "crowdwatch_last_frame_timestamp_seconds", "Wall-clock capture time of the last frame.", cam
        )
        self.inference_seconds = Histogram(
            "crowdwatch_inference_seconds", "Model time per batch.",
            buckets=LATENCY_BUCKETS, registry=registry,
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
            for metric in (self.people, self.frames_read, self.frames_processed, self.reconnects):
                metric.labels(camera)
            self.camera_up_gauge.labels(camera)
            self.latency.labels(camera)
            for reason in DROP_REASONS:
                self.frames_dropped.labels(camera, reason)
            for zone in (zones or {}).get(camera, ()):
                self.zone_people.labels(camera, zone)
                self.zone_alert.labels(camera, zone)

    # -- ReaderEvents --------------------------------------------------------------------------
    def frame_read(self, camera: str) -> None:
        self.frames_read.labels(camera).inc()

    def frame_dropped(self, camera: str, reason: str, n: int = 1) -> None:
        self.frames_dropped.labels(camera, reason).inc(n)

    def reconnect(self, camera: str) -> None:
        self.reconnects.labels(camera).inc()

    def camera_up(self, camera: str, up: bool) -> None:
        with self._lock:
            self._up[camera] = bool(up)
        self.camera_up_gauge.labels(camera).set(1 if up else 0)

    def frame_captured(self, camera: str, captured_at: float) -> None:
        with self._lock:
            self._last_frame[camera] = self._clock()
        self.last_frame_ts.labels(camera).set(captured_at)

    # -- worker --------------------------------------------------------------------------------
    def batch_done(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference_seconds.observe(seconds)

    def result_published(self, result: Result) -> None:
        camera = result.camera
        self.frames_processed.labels(camera).inc()
        self.people.labels(camera).set(result.count)
        self.latency.labels(camera).observe(result.latency_s)
        for zone, count in result.zone_counts.items():
            self.zone_people.labels(camera, zone).set(count)
        for zone, alert in result.zone_alerts.items():
            self.zone_alert.labels(camera, zone).set(1 if alert else 0)

    def set_build_info(self, *, version: str, torch: str, device: str, precision: str) -> None:
        self.build_info.labels(version, torch, device, precision).set(1)

    # -- health --------------------------------------------------------------------------------
    def health(self) -> tuple[bool, dict[str, object]]:
        """(every camera fresh, JSON-able details with a ``reason`` per stale camera)."""
        now = self._clock()
        cameras: dict[str, object] = {}
        stale: list[str] = []
        with self._lock:
            for camera, max_age in self.stale_after_s.items():
                last = self._last_frame.get(camera)
                age = None if last is None else round(now - last, 3)
                up = self._up.get(camera, False)
                if last is None:
                    reason = "no frame yet"
                elif not up:
                    reason = "camera down"
                elif age is not None and age > max_age:
                    reason = f"no frame for {age:.1f} s (stale after {max_age:g} s)"
                else:
                    reason = None
                cameras[camera] = {"up": up, "age_s": age, "fresh": reason is None}
                if reason is not None:
                    stale.append(f"{camera}: {reason}")
        body: dict[str, object] = {"status": "ok" if not stale else "stale", "cameras": cameras}
        if stale:
            body["reason"] = "; ".join(stale)
        return not stale, body


class MetricsServer:
    """HTTP server for ``/metrics`` and ``/healthz`` on its own daemon thread; ``stop()`` shuts it down."""

    def __init__(self, metrics: PipelineMetrics, address: str = "127.0.0.1", port: int = 9108) -> None:
        self.metrics = metrics
        handler = _make_handler(metrics)
        self._server = ThreadingHTTPServer((address, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> MetricsServer:
        if self._thread.is_alive():
            return self
        self._thread.start()
        logger.info("metrics: serving /metrics and /healthz on http://%s:%d", *self.address)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _make_handler(metrics: PipelineMetrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
            elif path == "/healthz":
                ok, body = metrics.health()
                self._send(200 if ok else 503, "application/json", json.dumps(body).encode())
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
            logger.debug("metrics http: " + format, *args)

    return Handler
