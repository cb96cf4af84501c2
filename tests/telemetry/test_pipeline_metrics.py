"""Metrics: exact names and labels in a fresh registry per test; the frame counts kept once."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from crowdwatch.sinks.base import Result
from crowdwatch.telemetry.metrics import PipelineMetrics


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def make(registry: CollectorRegistry) -> PipelineMetrics:
    return PipelineMetrics(registry, ["cam1", "cam2"], {"cam1": ["door"]})


def test_series_exist_at_zero_before_any_frame(registry: CollectorRegistry) -> None:
    make(registry)
    value = registry.get_sample_value
    assert value("crowdwatch_camera_up", {"camera": "cam2"}) == 0
    assert value("crowdwatch_frames_dropped_total", {"camera": "cam1", "reason": "sink_overload"}) == 0
    assert value("crowdwatch_zone_people", {"camera": "cam1", "zone": "door"}) == 0
    assert value("crowdwatch_zone_alert", {"camera": "cam1", "zone": "door"}) == 0
    assert value("crowdwatch_frames_read_total", {"camera": "cam2"}) == 0
    assert value("crowdwatch_reconnects_total", {"camera": "cam2"}) == 0


def test_reader_events_and_results_update_the_named_metrics(registry: CollectorRegistry) -> None:
    m = make(registry)
    m.frame_read("cam1")
    m.frame_read("cam1")
    m.frame_dropped("cam1", "superseded", 3)
    m.reconnect("cam2")
    m.camera_up("cam1", True)
    m.frame_captured("cam1", 1_700_000_000.5)
    m.batch_done(2, 0.3)
    m.result_published(
        Result(
            camera="cam1",
            index=0,
            captured_at=1_700_000_000.5,
            image=np.zeros((2, 2, 3), np.uint8),
            points=np.zeros((4, 2), np.float32),
            count=4,
            latency_s=0.7,
            zone_counts={"door": 2},
            zone_alerts={"door": True},
        )
    )
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
    assert (
        value(
            "crowdwatch_build_info",
            {"version": "0.1.0", "torch": "2.x", "device": "cpu", "precision": "fp32"},
        )
        == 1
    )


def test_counts_are_kept_once_and_exported_as_counters(registry: CollectorRegistry) -> None:
    m = make(registry)
    for _ in range(3):
        m.frame_read("cam2")
    m.frame_dropped("cam2", "sink_overload", 2)
    m.frame_dropped("cam2", "other_reason")
    counts = m.counts.get("cam2")
    assert (counts.read, counts.dropped["sink_overload"], counts.dropped["other_reason"]) == (3, 2, 1)
    value = registry.get_sample_value
    assert value("crowdwatch_frames_read_total", {"camera": "cam2"}) == counts.read
    assert value("crowdwatch_frames_dropped_total", {"camera": "cam2", "reason": "other_reason"}) == 1
    assert value("crowdwatch_frames_read_created", {"camera": "cam2"}) is not None  # like a client Counter
    text = generate_latest(registry).decode()
    assert "# TYPE crowdwatch_frames_dropped_total counter" in text
    assert m.counts.get("never-seen").processed == 0
