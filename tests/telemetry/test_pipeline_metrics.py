"""Metrics: exact names and labels in a fresh registry per test; the frame counts kept once."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from support.results import make_result

from crowdwatch.frames import Result
from crowdwatch.telemetry.metrics import PipelineMetrics


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def make(registry: CollectorRegistry) -> PipelineMetrics:
    return PipelineMetrics(registry, ["cam1", "cam2"], {"cam1": ["door"]})


def result(camera: str = "cam1", count: int = 4, door: int = 2) -> Result:
    return make_result(
        camera,
        count=count,
        latency_s=0.7,
        zone_counts={"door": door} if camera == "cam1" else {},
        zone_alerts={"door": True} if camera == "cam1" else {},
        smoothed_count=count - 0.5,
        zone_smoothed={"door": door + 0.5} if camera == "cam1" else {},
    )


PEOPLE = {
    ("crowdwatch_people", ("camera", "cam1")),
    ("crowdwatch_people_smoothed", ("camera", "cam1")),
    ("crowdwatch_zone_people", ("camera", "cam1"), ("zone", "door")),
    ("crowdwatch_zone_people_smoothed", ("camera", "cam1"), ("zone", "door")),
}


def people_series(registry: CollectorRegistry, camera: str = "cam1") -> set[tuple[object, ...]]:
    found = set()
    for family in registry.collect():
        for sample in family.samples:
            if "people" in sample.name and sample.labels.get("camera") == camera:
                found.add((sample.name, *sorted(sample.labels.items())))
    return found


def test_series_exist_at_zero_before_any_frame_except_the_people_gauges(registry: CollectorRegistry) -> None:
    make(registry)
    value = registry.get_sample_value
    assert value("crowdwatch_camera_up", {"camera": "cam2"}) == 0
    assert value("crowdwatch_frames_dropped_total", {"camera": "cam1", "reason": "sink_overload"}) == 0
    assert people_series(registry) == set()  # no frame yet: no count, not a count of 0
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
    m.result_published(result())
    m.set_build_info(site="lobby", version="0.1.0")
    m.set_build_info(torch="2.x", device="cpu", precision="fp32")
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
            {"site": "lobby", "version": "0.1.0", "torch": "2.x", "device": "cpu", "precision": "fp32"},
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
    assert value("crowdwatch_frames_read_created", {"camera": "cam2"}) is None  # no _created series
    text = generate_latest(registry).decode()
    assert "# TYPE crowdwatch_frames_dropped_total counter" in text
    assert m.counts.get("never-seen").processed == 0


def test_a_camera_that_goes_down_loses_its_people_gauges_until_its_next_frame(
    registry: CollectorRegistry,
) -> None:
    m = make(registry)
    m.camera_up("cam1", True)
    m.camera_up("cam2", True)
    m.result_published(result())
    m.result_published(result("cam2", count=9))
    assert people_series(registry) == PEOPLE

    m.camera_up("cam1", False)
    assert people_series(registry) == set()  # absent: not 0, not frozen at 4
    assert registry.get_sample_value("crowdwatch_camera_up", {"camera": "cam1"}) == 0
    assert registry.get_sample_value("crowdwatch_people", {"camera": "cam2"}) == 9  # the other camera stays
    m.result_published(result())  # a frame taken before the camera went down, published after
    assert people_series(registry) == set()

    m.camera_up("cam1", True)
    assert people_series(registry) == set()  # up, but no new frame yet
    m.result_published(result(count=6, door=1))
    assert people_series(registry) == PEOPLE
    assert registry.get_sample_value("crowdwatch_people", {"camera": "cam1"}) == 6
    assert registry.get_sample_value("crowdwatch_zone_people", {"camera": "cam1", "zone": "door"}) == 1


def camera_series(registry: CollectorRegistry, camera: str) -> set[str]:
    return {
        sample.name
        for family in registry.collect()
        for sample in family.samples
        if sample.labels.get("camera") == camera
    }


def test_a_reload_removes_a_camera_and_changes_zone_series(registry: CollectorRegistry) -> None:
    metrics = make(registry)
    metrics.camera_up("cam1", True)
    metrics.frame_read("cam1")
    metrics.result_published(result("cam1"))
    assert "crowdwatch_people" in camera_series(registry, "cam1")
    metrics.set_zones("cam1", ["hall"])  # door went, hall came
    value = registry.get_sample_value
    assert value("crowdwatch_zone_alert", {"camera": "cam1", "zone": "door"}) is None
    assert value("crowdwatch_zone_people", {"camera": "cam1", "zone": "door"}) is None
    assert value("crowdwatch_zone_alert", {"camera": "cam1", "zone": "hall"}) == 0
    assert value("crowdwatch_people", {"camera": "cam1"}) == 4  # the camera's own series stay
    metrics.set_zones("cam3", [])  # a camera added
    assert value("crowdwatch_camera_up", {"camera": "cam3"}) == 0
    assert value("crowdwatch_frames_read_total", {"camera": "cam3"}) == 0
    metrics.remove_camera("cam1")
    assert camera_series(registry, "cam1") == set()
    assert value("crowdwatch_camera_up", {"camera": "cam2"}) == 0  # the others stay
    metrics.result_published(result("cam2"))
    assert value("crowdwatch_frames_processed_total", {"camera": "cam2"}) == 1
