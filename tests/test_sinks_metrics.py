"""Metrics: exact names and labels in a fresh registry per test, /metrics and /healthz over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from crowdwatch.sinks.base import Result
from crowdwatch.sinks.metrics import MetricsServer, PipelineMetrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def make(registry: CollectorRegistry, clock: FakeClock | None = None) -> PipelineMetrics:
    return PipelineMetrics(
        registry, {"cam1": 5.0, "cam2": 5.0}, {"cam1": ["door"]}, **({"clock": clock} if clock else {})
    )


def test_series_exist_at_zero_before_any_frame(registry: CollectorRegistry) -> None:
    make(registry)
    value = registry.get_sample_value
    assert value("crowdwatch_camera_up", {"camera": "cam2"}) == 0
    assert value("crowdwatch_frames_dropped_total", {"camera": "cam1", "reason": "sink_overload"}) == 0
    assert value("crowdwatch_zone_people", {"camera": "cam1", "zone": "door"}) == 0
    assert value("crowdwatch_zone_alert", {"camera": "cam1", "zone": "door"}) == 0


def test_reader_events_and_results_update_the_named_metrics(registry: CollectorRegistry) -> None:
    m = make(registry)
    m.frame_read("cam1")
    m.frame_read("cam1")
    m.frame_dropped("cam1", "superseded", 3)
    m.reconnect("cam2")
    m.camera_up("cam1", True)
    m.frame_captured("cam1", 1_700_000_000.5)
    m.batch_done(2, 0.3)
    m.result_published(Result(
        camera="cam1", index=0, captured_at=1_700_000_000.5, image=np.zeros((2, 2, 3), np.uint8),
        points=np.zeros((4, 2), np.float32), count=4, latency_s=0.7,
        zone_counts={"door": 2}, zone_alerts={"door": True},
    ))
    m.set_build_info(version="0.1.0", torch="2.x", device="cpu", precision="fp32")
    value = registry.get_sample_value
    assert value("crowdwatch_frames_read_total", {"camera": "cam1"}) == 2
    assert value("crowdwatch_frames_dropped_total", {"camera": "cam1", "reason": "superseded"}) == 3
    assert value("crowdwatch_reconnects_total", {"camera": "cam2"}) == 1
    assert value("crowdwatch_camera_up", {"camera": "cam1"}) == 1
    assert value("crowdwatch_last_frame_timestamp_seconds", {"camera": "cam1"}) == 1_700_000_000.5
    assert value("crowdwatch_frames_processed_total", {"camera": "cam1"}) == 1
    assert value("crowdwatch_people", {"camera": "cam1"}) == 4
    assert value("crowdwatch_zone_people", {"camera": "cam1", "zone": "door"}) == 2
    assert value("crowdwatch_zone_alert", {"camera": "cam1", "zone": "door"}) == 1
    assert value("crowdwatch_inference_seconds_count") == 1
    assert value("crowdwatch_batch_size_sum") == 2
    assert value("crowdwatch_end_to_end_latency_seconds_bucket", {"camera": "cam1", "le": "1.0"}) == 1
    assert value("crowdwatch_end_to_end_latency_seconds_bucket", {"camera": "cam1", "le": "0.5"}) == 0
    assert value("crowdwatch_build_info", {"version": "0.1.0", "torch": "2.x", "device": "cpu",
                                           "precision": "fp32"}) == 1


def test_health_needs_every_camera_up_and_fresh(registry: CollectorRegistry) -> None:
    clock = FakeClock()
    m = make(registry, clock)
    ok, body = m.health()
    assert not ok and "cam1: no frame yet" in str(body["reason"])
    for camera in ("cam1", "cam2"):
        m.camera_up(camera, True)
        m.frame_captured(camera, 1.0)
    assert m.health() == (True, m.health()[1]) and m.health()[1]["status"] == "ok"
    clock.now += 6.0
    m.frame_captured("cam1", 2.0)
    ok, body = m.health()
    assert not ok and "cam2: no frame for 6.0 s" in str(body["reason"]) and "cam1" not in str(body["reason"])
    m.frame_captured("cam2", 2.0)
    m.camera_up("cam2", False)
    ok, body = m.health()
    assert not ok and body["reason"] == "cam2: camera down"


def test_http_server_serves_metrics_and_health_and_stops(registry: CollectorRegistry) -> None:
    m = make(registry)
    server = MetricsServer(m, "127.0.0.1", 0).start()
    host, port = server.address
    try:
        text = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
        assert 'crowdwatch_camera_up{camera="cam1"} 0.0' in text
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5)
        assert info.value.code == 503
        assert json.loads(info.value.read())["status"] == "stale"
        for camera in ("cam1", "cam2"):
            m.camera_up(camera, True)
            m.frame_captured(camera, 1.0)
        reply = urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5)
        assert reply.status == 200 and json.loads(reply.read())["status"] == "ok"
    finally:
        server.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=2)
