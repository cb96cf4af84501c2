"""The MQTT sink against a real broker (mosquitto on 127.0.0.1) and a real subscriber.

Results are built here with smoothed counts and alert events set (the worker fills them in the running
pipeline); what the subscriber receives is parsed and compared field by field. The metrics are the real
``MqttMetrics`` in a fresh registry; messages that never reached the broker are the sink's own losses
(``losses()``, which /metrics reads: tests/system/test_sink_losses.py).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from support.mosquitto import (
    BOX,
    BOX_PASSWORD,
    SUB,
    SUB_PASSWORD,
    Mosquitto,
    Subscriber,
    make_tls_files,
    require_mosquitto,
)
from support.results import make_result

from crowdwatch.config.mqtt import MqttSettings
from crowdwatch.frames import AlertChange, Result
from crowdwatch.sinks.mqtt import MqttSink
from crowdwatch.telemetry.mqtt_metrics import MqttMetrics


def settings(port: int, **overrides: object) -> MqttSettings:
    data: dict[str, object] = {
        "enabled": True,
        "port": port,
        "username": BOX,
        "password": BOX_PASSWORD,
        "reconnect": {"initial_s": 1, "max_s": 1},
        "keepalive_s": 5,
    }
    data.update(overrides)
    return MqttSettings.model_validate(data)


def result(
    index: int,
    *,
    camera: str = "cam-a",
    count: int = 7,
    smoothed: float | None = 6.25,
    zones: dict[str, tuple[int, float | None, bool]] | None = None,
    events: tuple[AlertChange, ...] = (),
    at: float = 1_700_000_000.5,
) -> Result:
    zones = zones or {}
    return make_result(
        camera,
        index,
        count=count,
        captured_at=at,
        latency_s=0.05,
        zone_counts={z: raw for z, (raw, _, _) in zones.items()},
        zone_alerts={z: alert for z, (_, _, alert) in zones.items()},
        smoothed_count=smoothed,
        zone_smoothed={z: s for z, (_, s, _) in zones.items() if s is not None},
        alert_events=events,
    )


def parse_iso(text: str) -> float:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_counts_alert_events_and_status_arrive_with_the_right_payloads(broker: Mosquitto) -> None:
    sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/#"])
    registry = CollectorRegistry()
    metrics = MqttMetrics(registry)
    sink = MqttSink(settings(broker.port, qos=1), "lobby", events=metrics)
    raised = AlertChange(
        "door", "raised", count=12.5, threshold=12.0, since=1_700_000_010.0, at=1_700_000_040.25
    )
    try:
        sink.open()
        sub.wait_for(
            "online", lambda: [m.payload for m in sub.received("crowdwatch/lobby/status")] == [b"online"]
        )
        sink.write(result(1, zones={"door": (3, 2.5, False), "queue": (4, None, False)}))
        sink.write(result(2, count=13, smoothed=None, zones={"door": (13, 12.5, True)}, events=(raised,)))
        sub.wait_for("the alert", lambda: len(sub.received("crowdwatch/lobby/+/+/alert")) == 1)
        sub.wait_for("5 counts and the alert", lambda: len(sub.received("crowdwatch/lobby/cam-a/#")) == 6)
    finally:
        sink.close()
    sub.wait_for("offline", lambda: sub.received("crowdwatch/lobby/status")[-1].payload == b"offline")
    sub.close()

    cams = [m.json() for m in sub.received("crowdwatch/lobby/cam-a/count")]
    assert cams[0] == {
        "site": "lobby",
        "camera": "cam-a",
        "count": 6.25,  # the smoothed count...
        "raw_count": 7,  # ...and the raw one
        "frame": 1,
        "time": "2023-11-14T22:13:20.500Z",
        "timestamp": 1_700_000_000.5,
    }
    assert (cams[1]["count"], cams[1]["raw_count"]) == (13.0, 13)  # nothing smoothed it: the raw count
    door = [m.json() for m in sub.received("crowdwatch/lobby/cam-a/door/count")]
    assert [(d["zone"], d["count"], d["raw_count"], d["alert"], d["frame"]) for d in door] == [
        ("door", 2.5, 3, False, 1),
        ("door", 12.5, 13, True, 2),
    ]
    (queue,) = [m.json() for m in sub.received("crowdwatch/lobby/cam-a/queue/count")]
    assert (queue["count"], queue["raw_count"]) == (4.0, 4)
    (alert,) = [m.json() for m in sub.received("crowdwatch/lobby/cam-a/door/alert")]
    assert alert == {
        "site": "lobby",
        "camera": "cam-a",
        "zone": "door",
        "state": "raised",
        "count": 12.5,
        "threshold": 12.0,
        "since": "2023-11-14T22:13:30.000Z",
        "since_timestamp": 1_700_000_010.0,
        "time": "2023-11-14T22:14:00.250Z",
        "timestamp": 1_700_000_040.25,
    }
    assert (
        parse_iso(alert["time"]) == alert["timestamp"]
        and parse_iso(alert["since"]) == alert["since_timestamp"]
    )
    # 5 counts and 1 alert, plus online and offline: all delivered, none dropped.
    assert registry.get_sample_value("crowdwatch_mqtt_published_messages_total") == 8
    assert registry.get_sample_value("crowdwatch_mqtt_connections_total") == 1
    assert registry.get_sample_value("crowdwatch_mqtt_connected") == 0  # after close
    assert sink.losses() == {"outbox_full": 0, "connection_lost": 0, "shutdown": 0, "raised": 0}


def test_a_late_subscriber_sees_the_latest_counts_and_alert_state_retained(broker: Mosquitto) -> None:
    sink = MqttSink(settings(broker.port, qos=1), "lobby")
    cleared = AlertChange(
        "door", "cleared", count=3.0, threshold=4.0, since=1_700_000_090.0, at=1_700_000_100.0
    )
    try:
        sink.open()
        for i in range(1, 6):
            sink.write(result(i, count=10 + i, smoothed=10.5 + i, zones={"door": (i, i + 0.5, False)}))
        sink.write(result(6, count=3, smoothed=3.0, zones={"door": (3, 3.0, False)}, events=(cleared,)))
        deadline = time.monotonic() + 10
        while sink.outbox_length() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.outbox_length() == 0
        late = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/#"])
        late.wait_for("4 retained messages", lambda: len(late.received()) >= 4)
        time.sleep(0.3)  # anything else would arrive now
        latest = {m.topic: m for m in late.received()}
        late.close()
    finally:
        sink.close()
    assert len(late.received()) == 4  # only the last message of each topic is kept
    assert all(m.retain for m in latest.values())
    assert latest["crowdwatch/lobby/status"].payload == b"online"
    cam = latest["crowdwatch/lobby/cam-a/count"].json()
    assert (cam["frame"], cam["count"], cam["raw_count"]) == (6, 3.0, 3)
    assert latest["crowdwatch/lobby/cam-a/door/count"].json()["count"] == 3.0
    assert latest["crowdwatch/lobby/cam-a/door/alert"].json()["state"] == "cleared"


def test_a_down_broker_or_a_refused_login_never_blocks_write_and_the_outbox_keeps_the_newest(
    tmp_path: Path,
) -> None:
    require_mosquitto()
    broker = Mosquitto(tmp_path / "broker", {SUB: SUB_PASSWORD})  # not started; and "box" unknown to it
    registry = CollectorRegistry()
    metrics = MqttMetrics(registry)
    sink = MqttSink(settings(broker.port, outbox_size=20), "lobby", events=metrics)
    metrics.watch_outbox(sink.outbox_length)

    def dropped() -> int:
        return sink.losses()["outbox_full"]

    def write_timed(frames: range) -> float:
        slowest = 0.0
        for i in frames:  # one message per result (no zones)
            started = time.perf_counter()
            sink.write(result(i))
            slowest = max(slowest, time.perf_counter() - started)
        return slowest

    sub = None
    try:
        sink.open()
        slowest = write_timed(range(100))  # nothing listens on the port
        assert slowest < 0.05, f"write() took {slowest * 1000:.1f} ms with the broker down"
        assert dropped() == 80
        broker.start()  # now it listens, but refuses the sink's login
        sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/lobby/cam-a/count"])
        slowest = write_timed(range(100, 200))
        time.sleep(1.5)  # at least one refused attempt (backoff 1 s)
        assert slowest < 0.05, f"write() took {slowest * 1000:.1f} ms with the login refused"
        assert dropped() == 180
        assert registry.get_sample_value("crowdwatch_mqtt_outbox_messages") == 20
        assert registry.get_sample_value("crowdwatch_mqtt_connected") == 0
        assert not sub.received()
        broker.add_user(BOX, BOX_PASSWORD)  # and reload: the next attempt gets in
        sub.wait_for("20 counts", lambda: len(sub.received()) >= 20)
        assert registry.get_sample_value("crowdwatch_mqtt_connected") == 1
        sink.write(result(200))
        sub.wait_for("frame 200", lambda: any(m.json()["frame"] == 200 for m in sub.received()))
    finally:
        if sub is not None:
            sub.close()
        sink.close()
        broker.stop()
    # The oldest went first: the 20 kept are the newest, delivered in order, then the live one.
    assert [m.json()["frame"] for m in sub.received()] == list(range(180, 201))
    assert registry.get_sample_value("crowdwatch_mqtt_outbox_messages") == 0
    assert registry.get_sample_value("crowdwatch_mqtt_connections_total") == 1


def test_a_burst_at_qos_2_stays_within_the_brokers_inflight_quota(broker: Mosquitto) -> None:
    # mosquitto accepts 20 unacknowledged QoS 2 messages per client (max_inflight_messages) and drops
    # the connection at the 21st: a burst must flow without a single reconnect.
    registry = CollectorRegistry()
    metrics = MqttMetrics(registry)
    sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/lobby/+/count"])
    sink = MqttSink(settings(broker.port, qos=2), "lobby", events=metrics)
    try:
        sink.open()
        for i in range(300):
            sink.write(result(i, camera=f"cam{i % 20}"))
        sub.wait_for("300 counts", lambda: len(sub.received()) == 300, timeout=30)
    finally:
        sink.close()
        sub.close()
    assert registry.get_sample_value("crowdwatch_mqtt_connections_total") == 1
    assert "quota" not in broker.logs().lower() and "Bad socket" not in broker.logs()


def test_tls_with_the_sites_ca_connects_and_an_untrusted_certificate_is_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_mosquitto()
    tls = make_tls_files(tmp_path / "tls")
    broker = Mosquitto(tmp_path / "broker", {BOX: BOX_PASSWORD, SUB: SUB_PASSWORD}, tls=tls).start()
    assert broker.tls_port is not None
    sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/+/cam-a/count"])  # plain listener
    trusted = MqttSink(settings(broker.tls_port, tls={"enabled": True, "ca_file": str(tls.ca)}), "good")
    # Without ca_file only the system's CAs are trusted, and they did not sign the test broker.
    untrusted = MqttSink(settings(broker.tls_port, tls={"enabled": True}), "bad")
    try:
        with caplog.at_level(logging.INFO, logger="crowdwatch.sinks.mqtt_client"):
            trusted.open()
            untrusted.open()
            trusted.write(result(1))
            untrusted.write(result(1))
            sub.wait_for("the trusted sink's count", lambda: len(sub.received()) >= 1)
            deadline = time.monotonic() + 10
            while "certificate verify failed" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            assert trusted.connected and not untrusted.connected
    finally:
        trusted.close()
        untrusted.close()
        sub.close()
        broker.stop()
    assert [m.topic for m in sub.received()] == ["crowdwatch/good/cam-a/count"]
    assert f"mqtt: cannot reach broker 127.0.0.1:{broker.tls_port}: " in caplog.text
    assert "certificate verify failed" in caplog.text and "check mqtt.tls.ca_file" in caplog.text
    assert BOX_PASSWORD not in caplog.text


def test_close_delivers_what_is_still_waiting_then_says_offline(broker: Mosquitto) -> None:
    registry = CollectorRegistry()
    metrics = MqttMetrics(registry)
    sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/lobby/#"])
    sink = MqttSink(settings(broker.port, qos=1), "lobby", events=metrics)
    try:
        sink.open()
        sub.wait_for("online", lambda: len(sub.received("crowdwatch/lobby/status")) == 1)
        for i in range(60):
            sink.write(result(i, camera=f"cam{i % 20}"))
    finally:
        sink.close()  # at once: the 60 are still in the outbox or in flight
    sub.wait_for("offline", lambda: sub.received("crowdwatch/lobby/status")[-1].payload == b"offline")
    sub.close()
    assert len(sub.received("crowdwatch/lobby/+/count")) == 60
    assert sink.losses()["shutdown"] == 0
