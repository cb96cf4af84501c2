"""Flow in every output: CSV increments per line, the Prometheus counter and histograms, the MQTT
messages and retained topics, and the overlay's line, totals and tails."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
from prometheus_client import CollectorRegistry

from crowdwatch.drawing import LINE_COLOR, TAIL_COLOR
from crowdwatch.flow import Dwell, FlowReading
from crowdwatch.frames import Result
from crowdwatch.lines import Crossing
from crowdwatch.sinks.csv import CsvSink, header_columns
from crowdwatch.sinks.mqtt_messages import CameraLayout, SiteTopics, result_messages, retained_topics
from crowdwatch.sinks.overlay import OverlaySink
from crowdwatch.telemetry.flow_metrics import FlowMetrics

T0 = 1_790_000_000.0
CROSSING = Crossing("gate", "in", "entering", 7, T0, (50.0, 105.0))


def result(flow: FlowReading | None, camera: str = "cam1", index: int = 0) -> Result:
    return Result(
        camera=camera,
        index=index,
        captured_at=T0 + index,
        image=np.full((120, 200, 3), 90, np.uint8),
        points=np.array([[50.0, 105.0]], np.float32),
        count=1,
        latency_s=0.1,
        flow=flow,
    )


def reading(crossings: tuple[Crossing, ...] = (), totals: tuple[int, int] = (0, 0)) -> FlowReading:
    return FlowReading(
        crossings=crossings,
        totals={"gate": totals},
        dwells=(Dwell("hall", 7, 12.5),),
        lingering={"hall": 2},
        tails=(((30.0, 60.0), (40.0, 80.0), (50.0, 105.0)),),
    )


def test_csv_has_per_frame_increments_per_line(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path, ["hall"], line_ids=["gate", "exit"])
    with sink:
        sink.write(result(reading()))
        sink.write(result(reading((CROSSING,), (1, 0)), index=1))
        sink.write(result(None, camera="cam2", index=2))  # a camera without lines
    assert sink.path is not None
    rows = list(csv.DictReader(sink.path.open()))
    assert list(rows[0]) == header_columns(["hall"], ["gate", "exit"])
    assert [(r["in_gate"], r["out_gate"], r["in_exit"]) for r in rows] == [
        ("0", "0", ""),
        ("1", "0", ""),
        ("", "", ""),
    ]


def test_metrics_count_crossings_by_direction_name_and_observe_dwell() -> None:
    registry = CollectorRegistry()
    metrics = FlowMetrics(
        registry, {"cam1": [("gate", "entering", "leaving")]}, {"cam1": ["hall"]}, {"cam1": ["hall"]}
    )
    labels = {"camera": "cam1", "line": "gate"}
    assert (
        registry.get_sample_value("crowdwatch_line_crossings_total", {**labels, "direction": "leaving"}) == 0
    )
    metrics.observe(result(reading((CROSSING,), (1, 0))))
    metrics.observe(result(None))
    assert (
        registry.get_sample_value("crowdwatch_line_crossings_total", {**labels, "direction": "entering"}) == 1
    )
    zone = {"camera": "cam1", "zone": "hall"}
    assert registry.get_sample_value("crowdwatch_zone_dwell_seconds_count", zone) == 1
    assert registry.get_sample_value("crowdwatch_zone_dwell_seconds_sum", zone) == 12.5
    assert registry.get_sample_value("crowdwatch_zone_dwell_seconds_bucket", {**zone, "le": "10.0"}) == 0
    assert registry.get_sample_value("crowdwatch_zone_dwell_seconds_bucket", {**zone, "le": "20.0"}) == 1
    assert registry.get_sample_value("crowdwatch_zone_lingering", zone) == 2


def test_mqtt_publishes_each_crossing_and_retained_totals() -> None:
    topics = SiteTopics("crowdwatch/lobby")
    messages = list(result_messages(topics, "lobby", result(reading((CROSSING,), (1, 0))), retain=True))
    by_topic = {m.topic: m for m in messages}
    event = by_topic["crowdwatch/lobby/cam1/gate/crossing"]
    totals = by_topic["crowdwatch/lobby/cam1/gate/crossings"]
    assert not event.retain and totals.retain
    assert json.loads(event.payload) | {"time": None} == {
        "site": "lobby",
        "camera": "cam1",
        "line": "gate",
        "direction": "in",
        "name": "entering",
        "track": 7,
        "time": None,
        "timestamp": T0,
    }
    body = json.loads(totals.payload)
    assert (body["in"], body["out"], body["line"], body["frame"]) == (1, 0, "gate", 0)
    kept = retained_topics(topics, [CameraLayout("cam1", lines=("gate",))], retain=True)
    assert "crowdwatch/lobby/cam1/gate/crossings" in kept
    assert "crowdwatch/lobby/cam1/gate/crossing" not in kept


def test_overlay_draws_the_line_its_totals_and_tails(tmp_path: Path) -> None:
    sink = OverlaySink(
        tmp_path,
        interval_s=0,
        lines={"cam1": [("gate", (10.0, 100.0), (190.0, 100.0), "entering", "leaving")]},
    )
    with sink:
        sink.write(result(reading((CROSSING,), (3, 1))))
    image = cv2.imread(str(sink.snapshot_path("cam1")))
    assert image is not None

    def near(colour: tuple[int, int, int], region: np.ndarray) -> int:
        return int((np.abs(region.astype(int) - colour).sum(axis=2) < 60).sum())

    assert near(LINE_COLOR, image[98:103, 150:190]) > 20  # the line, right of the arrow
    assert near(TAIL_COLOR, image[60:80, 30:40]) > 3  # the tail between its points
    plain = OverlaySink(tmp_path / "plain", interval_s=0)
    with plain:
        plain.write(result(None))
    without = cv2.imread(str(plain.snapshot_path("cam1")))
    assert near(LINE_COLOR, without[98:103, 150:190]) == 0
