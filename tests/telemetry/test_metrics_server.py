"""The /metrics and /healthz server over real HTTP, on IPv4 and on the IPv6 loopback."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from crowdwatch.capture.base import CameraState
from crowdwatch.telemetry.health import camera_health
from crowdwatch.telemetry.metrics import PipelineMetrics
from crowdwatch.telemetry.server import MetricsServer


class States:
    """The readers' states, as a test sets them."""

    def __init__(self, *cameras: str) -> None:
        self.states = {camera: CameraState(camera, False, None) for camera in cameras}

    def set_up(self, camera: str) -> None:
        self.states[camera] = CameraState(camera, True, 0.1)

    def health(self) -> tuple[bool, dict[str, object]]:
        return camera_health(self.states.values())


def ipv6_loopback_missing() -> str | None:
    if not socket.has_ipv6:
        return "Python built without IPv6"
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError as exc:
        return f"no IPv6 loopback here: {exc}"
    return None


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    PipelineMetrics(registry, ["cam1", "cam2"], {"cam1": ["door"]})
    return registry


def test_http_server_serves_metrics_and_health_and_stops(registry: CollectorRegistry) -> None:
    states = States("cam1", "cam2")
    server = MetricsServer(registry, states.health, "127.0.0.1", 0).start()
    host, port = server.address
    try:
        text = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
        assert 'crowdwatch_camera_up{camera="cam1"} 0.0' in text
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5)
        assert info.value.code == 503
        assert json.loads(info.value.read())["status"] == "stale"
        for camera in ("cam1", "cam2"):
            states.set_up(camera)
        reply = urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5)
        assert reply.status == 200 and json.loads(reply.read())["status"] == "ok"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://{host}:{port}/other", timeout=5)
        assert info.value.code == 404
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError):  # refused: nothing listens any more
        urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=2)


def test_binds_the_ipv6_loopback_the_config_suggests(registry: CollectorRegistry) -> None:
    missing = ipv6_loopback_missing()
    if missing:
        pytest.skip(missing)
    states = States("cam1", "cam2")
    server = MetricsServer(registry, states.health, "::1", 0).start()  # socket.gaierror before the fix
    try:
        assert server.address[0] == "::1" and server.url.startswith("http://[::1]:")
        text = urllib.request.urlopen(f"{server.url}/metrics", timeout=5).read().decode()
        assert 'crowdwatch_camera_up{camera="cam1"} 0.0' in text
        states.set_up("cam1")
        states.set_up("cam2")
        reply = urllib.request.urlopen(f"{server.url}/healthz", timeout=5)
        assert reply.status == 200 and json.loads(reply.read())["status"] == "ok"
    finally:
        server.stop()


def test_smoothed_gauges_are_served_over_http() -> None:
    """Results from the real worker, gauges scraped from the real endpoint and parsed."""
    import time

    import numpy as np
    from prometheus_client.parser import text_string_to_metric_families

    from crowdwatch.frames import Frame
    from crowdwatch.inference.worker import Worker
    from crowdwatch.zones import CameraZones, Zone

    class Heads:
        def predict(self, images):  # n heads at (5, 5), n = the first pixel
            return [_Prediction(np.full((int(im[0, 0, 0]), 2), 5, np.float32)) for im in images]

    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, ["cam1"], {"cam1": ["door"]})
    metrics.camera_up("cam1", True)  # its reader says so before the first frame
    door = Zone("door", np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32))
    worker = Worker(Heads(), [], events=metrics, zones={"cam1": CameraZones([door], window_s=10)})
    for i, n in enumerate([10, 10, 40]):  # 1 frame/s: 10, 10, then 40 for 1 s of the 2 s seen
        image = np.full((16, 16, 3), n, np.uint8)
        worker.process([Frame("cam1", image, i, 1_800_000_000.0 + i, time.monotonic())])
    server = MetricsServer(registry, States("cam1").health, "127.0.0.1", 0).start()
    try:
        text = urllib.request.urlopen(f"{server.url}/metrics", timeout=5).read().decode()
    finally:
        server.stop()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("crowdwatch_people", (("camera", "cam1"),))] == 40
    assert samples[("crowdwatch_people_smoothed", (("camera", "cam1"),))] == 25
    assert samples[("crowdwatch_zone_people_smoothed", (("camera", "cam1"), ("zone", "door")))] == 25
    assert "# TYPE crowdwatch_people_smoothed gauge" in text


class _Prediction:
    def __init__(self, points):
        self.points = points
        self.count = len(points)
