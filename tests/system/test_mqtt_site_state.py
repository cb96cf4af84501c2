"""The MQTT sink's state on connect against a real mosquitto: retained alerts replaced by the present,
topics of removed zones and cameras cleared, each camera's availability. The sink runs in-process
(no model); what the broker retains is read back by a fresh subscriber."""

from __future__ import annotations

import json

from support.mosquitto import (
    BOX,
    BOX_PASSWORD,
    SUB,
    SUB_PASSWORD,
    Mosquitto,
    Subscriber,
    retained,
)
from support.results import make_result

from crowdwatch.config.mqtt import MqttSettings
from crowdwatch.frames import AlertChange, Result
from crowdwatch.sinks.mqtt import MqttSink
from crowdwatch.sinks.mqtt_messages import CameraLayout, SiteLayout

T0 = 1_700_000_000.0


def sink(broker: Mosquitto, layout: SiteLayout, **overrides: object) -> MqttSink:
    data: dict[str, object] = {
        "enabled": True,
        "port": broker.port,
        "username": BOX,
        "password": BOX_PASSWORD,
        "reconnect": {"initial_s": 1, "max_s": 1},
        "keepalive_s": 5,
    }
    data.update(overrides)
    return MqttSink(MqttSettings.model_validate(data), "lobby", layout=layout)


def result(camera: str, zones: dict[str, int], events: tuple[AlertChange, ...] = ()) -> Result:
    return make_result(
        camera,
        1,
        count=sum(zones.values()),
        captured_at=T0,
        latency_s=0.01,
        zone_counts=zones,
        zone_alerts={zone: any(e.zone == zone and e.state == "raised" for e in events) for zone in zones},
        alert_events=events,
    )


def snapshot(broker: Mosquitto) -> dict[str, bytes]:
    return retained(broker.port, SUB, SUB_PASSWORD, "crowdwatch/lobby/#")


def test_restart_with_a_changed_config_replaces_the_old_alert_and_clears_removed_topics(
    broker: Mosquitto,
) -> None:
    first = SiteLayout(
        (
            CameraLayout("hall", ("door", "gone"), ("door", "gone")),
            CameraLayout("old-cam", ("x",), ()),
        )
    )
    raised = AlertChange("door", "raised", 12.0, 10.0, T0 - 5, T0)
    with sink(broker, first) as run1:
        run1.camera_status("hall", True)
        run1.camera_status("old-cam", True)
        run1.write(result("hall", {"door": 12, "gone": 1}, (raised,)))
        run1.write(result("old-cam", {"x": 3}))
        sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/lobby/hall/door/alert"])
        sub.wait_for("the raised alert", lambda: any(m.json()["state"] == "raised" for m in sub.received()))
        sub.close()
    before = snapshot(broker)
    assert json.loads(before["crowdwatch/lobby/hall/door/alert"])["state"] == "raised"
    assert before["crowdwatch/lobby/hall/status"] == b"offline"  # a clean stop: every camera offline
    assert before["crowdwatch/lobby/status"] == b"offline"
    assert "crowdwatch/lobby/old-cam/x/count" in before

    # The second run: `door` can no longer be raised, `gone` and the old camera are out of the config.
    second = SiteLayout((CameraLayout("hall", ("door",), ("door",)),))
    with sink(broker, second) as run2:
        sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/lobby/status"])
        sub.wait_for("online", lambda: any(m.payload == b"online" for m in sub.received()))
        sub.close()
        expected = {  # the last counts of `hall` stay (its status says whether they are live)
            "crowdwatch/lobby/status",
            "crowdwatch/lobby/hall/status",
            "crowdwatch/lobby/hall/count",
            "crowdwatch/lobby/hall/door/count",
            "crowdwatch/lobby/hall/door/alert",
        }
        after: dict[str, bytes] = {}
        for _ in range(100):  # the sweep runs right after the connect; poll what the broker retains
            after = snapshot(broker)
            if set(after) == expected:
                break
        assert set(after) == expected, sorted(after)
        door = json.loads(after["crowdwatch/lobby/hall/door/alert"])
        assert door["state"] == "cleared" and door["count"] is None and door["since"] is None
        assert after["crowdwatch/lobby/hall/status"] == b"offline"  # no frame from it yet
        run2.camera_status("hall", True)
        sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/lobby/hall/status"])
        sub.wait_for(
            "hall online", lambda: sub.received()[-1].payload == b"online" if sub.received() else False
        )
        sub.close()
    assert snapshot(broker)["crowdwatch/lobby/hall/status"] == b"offline"


def test_the_current_alert_state_is_published_again_on_every_connect(broker: Mosquitto) -> None:
    layout = SiteLayout((CameraLayout("hall", ("door",), ("door",)),))
    raised = AlertChange("door", "raised", 12.0, 10.0, T0 - 5, T0)
    with sink(broker, layout) as box:
        box.write(result("hall", {"door": 12}, (raised,)))
        sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/lobby/hall/door/alert"])
        sub.wait_for("raised", lambda: box.connected and box.outbox_length() == 0 and bool(sub.received()))
        seen = len(sub.received())
        broker.kill()  # the broker forgets everything (no persistence), then comes back
        broker.start()
        sub.wait_for("the alert again after the reconnect", lambda: len(sub.received()) > seen, timeout=30)
        sub.close()
        again = sub.received()[-1].json()
        assert again["state"] == "raised" and again["since_timestamp"] == T0 - 5
        assert snapshot(broker)["crowdwatch/lobby/hall/door/alert"] == sub.received()[-1].payload


def test_a_reloaded_layout_clears_a_removed_camera_and_announces_a_new_one(broker: Mosquitto) -> None:
    """A config reload while connected: the removed camera says offline and its counts, zones, alerts and
    Home Assistant configs are cleared; the new camera and alert zone are announced; the kept camera's
    raised alert stays as it is."""
    first = SiteLayout(
        (CameraLayout("hall", ("door",), ("door",)), CameraLayout("yard", ("gate",), ("gate",)))
    )
    raised = AlertChange("door", "raised", 12.0, 10.0, T0 - 5, T0)
    ha = {"enabled": True, "discovery_prefix": "homeassistant"}
    with sink(broker, first, homeassistant=ha) as run:
        for camera in ("hall", "yard"):
            run.camera_status(camera, True)
        run.write(result("hall", {"door": 12}, (raised,)))
        run.write(result("yard", {"gate": 2}))
        everything = ["crowdwatch/lobby/#", "homeassistant/#"]
        sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/lobby/yard/gate/count"])
        sub.wait_for("yard's zone count", lambda: bool(sub.received()))
        sub.close()
        discovery = retained(broker.port, SUB, SUB_PASSWORD, "homeassistant/#")
        assert any("yard" in topic for topic in discovery)

        second = SiteLayout(
            (CameraLayout("hall", ("door",), ("door",)), CameraLayout("dock", ("bay",), ("bay",)))
        )
        run.set_layout(second)
        expected_gone = {
            "crowdwatch/lobby/yard/count",
            "crowdwatch/lobby/yard/gate/count",
            "crowdwatch/lobby/yard/gate/alert",
        }
        after: dict[str, bytes] = {}
        for _ in range(100):
            after = {**snapshot(broker), **retained(broker.port, SUB, SUB_PASSWORD, everything[1])}
            if not expected_gone & set(after) and "crowdwatch/lobby/dock/bay/alert" in after:
                break
        assert not expected_gone & set(after), sorted(after)
        assert after["crowdwatch/lobby/yard/status"] == b"offline"
        assert after["crowdwatch/lobby/dock/status"] == b"offline"  # until its first frame
        assert json.loads(after["crowdwatch/lobby/dock/bay/alert"])["state"] == "cleared"
        assert json.loads(after["crowdwatch/lobby/hall/door/alert"])["state"] == "raised"
        assert after["crowdwatch/lobby/hall/status"] == b"online"
        assert not any("yard" in topic for topic in after if topic.startswith("homeassistant/"))
        assert any("dock" in topic for topic in after if topic.startswith("homeassistant/"))
        run.camera_status("yard", True)  # the removed camera's reader, late: not heard
        run.camera_status("dock", True)  # (queued after it: once this is out, so would that be)
        sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/lobby/+/status"])
        sub.wait_for("dock online", lambda: snapshot(broker).get("crowdwatch/lobby/dock/status") == b"online")
        sub.close()
        assert snapshot(broker)["crowdwatch/lobby/yard/status"] == b"offline"
