"""What `crowdwatch run` leaves on a real mosquitto must stay true: a camera's outage (RTSP server
killed) shows as `offline` and absent people gauges; a restart with a changed config replaces the old
alert and clears removed zones; Home Assistant discovery for a 2-camera, 3-zone site follows HA's
documented schema and loses a removed zone's entity. The pipeline is a subprocess, /metrics is scraped,
what the broker retains is read by a fresh subscriber."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from support.homeassistant_schema import problems
from support.mosquitto import Mosquitto, Subscriber, require_mosquitto, retained
from support.pipeline_harness import (
    running_pipeline,
    write_config,
    write_lossless_still_h264,
    write_still_clip,
)
from support.rtsp_fixtures import RtspServer, requires_rtsp

from crowdwatch.demo import render_frames

BOX, BOX_PASSWORD = "box", "Box-Pass-9120"
SUB, SUB_PASSWORD = "reader", "Reader-Pass-4471"
WHOLE = [[0, 0], [160, 0], [160, 128], [0, 128]]
LEFT = [[0, 0], [80, 0], [80, 128], [0, 128]]
RIGHT = [[80, 0], [160, 0], [160, 128], [80, 128]]


def mqtt_section(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "port": port,
        "username": BOX,
        "password": "${env:CW_MQTT_PASSWORD}",
        "keepalive_s": 5,
        "reconnect": {"initial_s": 1, "max_s": 2},
        **extra,
    }


def output(tmp_path: Path) -> dict[str, Any]:
    return {"dir": str(tmp_path / "out"), "csv": {"flush_interval_s": 0.5}, "snapshots": {"enabled": False}}


def crowd_clip(tmp_path: Path, name: str) -> str:
    """A looping still of the demo crowd (the packaged model finds heads in it)."""
    return str(write_still_clip(tmp_path / f"{name}.avi", render_frames(160, 128, 1, 25, seed=1)[0]))


def site_retained(broker: Mosquitto, topic_filter: str = "crowdwatch/lobby/#") -> dict[str, bytes]:
    return retained(broker.port, SUB, SUB_PASSWORD, topic_filter)


@pytest.fixture
def broker(tmp_path: Path, cli_env: dict[str, str]) -> Any:
    require_mosquitto()
    broker = Mosquitto(tmp_path / "broker", {BOX: BOX_PASSWORD, SUB: SUB_PASSWORD}).start()
    cli_env["CW_MQTT_PASSWORD"] = BOX_PASSWORD
    try:
        yield broker
    finally:
        broker.stop()


def people_series(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], camera: str) -> set[str]:
    return {
        name for (name, labels), _ in samples.items() if "people" in name and ("camera", camera) in labels
    }


PEOPLE = {
    "crowdwatch_people",
    "crowdwatch_people_smoothed",
    "crowdwatch_zone_people",
    "crowdwatch_zone_people_smoothed",
}


@requires_rtsp
@pytest.mark.rtsp
def test_a_killed_rtsp_camera_is_offline_and_its_people_gauges_are_absent_until_it_is_back(
    tmp_path: Path, cli_env: dict[str, str], broker: Mosquitto
) -> None:
    clip = write_lossless_still_h264(
        tmp_path / "mall.mp4", render_frames(160, 128, 1, 25, seed=1)[0], seconds=60
    )
    server = RtspServer({"/live": f"file:{clip}"})
    sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/lobby/mall/status"])
    try:
        server.start()
        camera = {
            "id": "mall",
            "url": server.url("/live"),
            "fps": 2,
            "open_timeout_s": 2.0,
            "read_timeout_s": 1.0,
            "stale_after_s": 5.0,
            "reconnect": {"initial_s": 0.5, "max_s": 1.0, "jitter": 0.1},
            "zones": [{"id": "shop", "polygon": WHOLE}],
        }
        config = write_config(
            tmp_path / "site.yaml",
            [camera],
            site="lobby",
            mqtt=mqtt_section(broker.port),
            output=output(tmp_path),
        )
        with running_pipeline(config, tmp_path, env=cli_env) as pipeline:
            statuses = lambda: [m.payload for m in sub.received()]  # noqa: E731 (a short poll)
            pipeline.wait_for("mall online", lambda: statuses()[-1:] == [b"online"], timeout=60)
            pipeline.wait_for(
                "people gauges", lambda: people_series(pipeline.scrape(), "mall") == PEOPLE, timeout=30
            )

            server.kill()  # the camera loses power
            pipeline.wait_for("mall offline", lambda: statuses()[-1:] == [b"offline"], timeout=20)
            samples = pipeline.scrape()
            assert samples[("crowdwatch_camera_up", frozenset({("camera", "mall")}))] == 0
            assert people_series(samples, "mall") == set()  # absent: not 0, not the last count
            assert site_retained(broker)["crowdwatch/lobby/mall/status"] == b"offline"

            server.start()  # same port: the reader reconnects, the first new frame brings the gauges back
            pipeline.wait_for("mall online again", lambda: statuses()[-1:] == [b"online"], timeout=30)
            pipeline.wait_for(
                "people gauges again", lambda: people_series(pipeline.scrape(), "mall") == PEOPLE, timeout=30
            )
            rc, _ = pipeline.signal(signal.SIGTERM)
            assert rc == 0, pipeline.logs()[-3000:]
    finally:
        sub.close()
        server.stop()
    after = site_retained(broker)
    assert after["crowdwatch/lobby/mall/status"] == b"offline"  # a clean stop
    assert after["crowdwatch/lobby/status"] == b"offline"
    assert "Traceback" not in pipeline.logs()


def run_until_settled(config: Path, tmp_path: Path, env: dict[str, str], settled: Any, what: str) -> str:
    """Run the pipeline until ``settled()`` (polled), then stop it cleanly; its logs."""
    with running_pipeline(config, tmp_path, env=env) as pipeline:
        pipeline.wait_for(what, settled, timeout=90, interval=0.5)
        rc, _ = pipeline.signal(signal.SIGTERM)
        assert rc == 0, pipeline.logs()[-3000:]
    return pipeline.logs()


def two_cameras(tmp_path: Path, *, door_high: float, with_right: bool) -> list[dict[str, Any]]:
    alert = {"high": door_high, "low": 0}
    hall_zones = [{"id": "door", "polygon": LEFT, "alert": alert}]
    if with_right:
        hall_zones.append({"id": "right", "polygon": RIGHT, "alert": {"high": 100, "low": 50}})
    return [
        {"id": "hall", "url": crowd_clip(tmp_path, "hall"), "fps": 4, "loop": True, "zones": hall_zones},
        {
            "id": "gate",
            "url": crowd_clip(tmp_path, "gate"),
            "fps": 4,
            "loop": True,
            "zones": [{"id": "queue", "polygon": WHOLE}],
        },
    ]


def test_a_restart_with_a_changed_config_replaces_the_old_alert_and_clears_removed_zones(
    tmp_path: Path, cli_env: dict[str, str], broker: Mosquitto
) -> None:
    ha = {"homeassistant": {"enabled": True}}
    door_alert = "crowdwatch/lobby/hall/door/alert"

    def raised() -> bool:
        payload = site_retained(broker).get(door_alert)
        return payload is not None and json.loads(payload)["state"] == "raised"

    first = write_config(
        tmp_path / "first.yaml",
        two_cameras(tmp_path, door_high=1, with_right=True),
        site="lobby",
        mqtt=mqtt_section(broker.port, **ha),
        output=output(tmp_path),
    )
    run_until_settled(first, tmp_path, cli_env, raised, "the door alert raised")
    before = site_retained(broker)
    assert json.loads(before[door_alert])["state"] == "raised"  # left behind by a clean stop
    assert "crowdwatch/lobby/hall/right/count" in before
    assert any("hall_right" in topic for topic in site_retained(broker, "homeassistant/#"))

    # Again with `door` unable to alert (high 100) and the zone `right` removed.
    second = write_config(
        tmp_path / "second.yaml",
        two_cameras(tmp_path, door_high=100, with_right=False),
        site="lobby",
        mqtt=mqtt_section(broker.port, **ha),
        output=output(tmp_path),
    )

    def replaced() -> bool:
        now = site_retained(broker)
        door_count = now.get("crowdwatch/lobby/hall/door/count")
        return (
            json.loads(now[door_alert])["state"] == "cleared"
            and door_count is not None
            and json.loads(door_count)["frame"] > 0  # a frame of this run
            and not any("/right/" in topic for topic in now)
            and not any("hall_right" in topic for topic in site_retained(broker, "homeassistant/#"))
        )

    logs = run_until_settled(second, tmp_path, cli_env, replaced, "the alert replaced, `right` cleared")
    now = site_retained(broker)
    door = json.loads(now[door_alert])
    assert door["state"] == "cleared" and door["count"] is None  # the state at start: nothing held yet
    assert json.loads(now["crowdwatch/lobby/hall/door/count"])["alert"] is False  # the two agree
    assert "mqtt: cleared" in logs and "crowdwatch/lobby/hall/right/count" in logs
    assert BOX_PASSWORD not in logs


def test_home_assistant_discovery_for_a_two_camera_three_zone_site(
    tmp_path: Path, cli_env: dict[str, str], broker: Mosquitto
) -> None:
    config = write_config(
        tmp_path / "site.yaml",
        two_cameras(tmp_path, door_high=1, with_right=True),
        site="lobby",
        mqtt=mqtt_section(broker.port, homeassistant={"enabled": True, "discovery_prefix": "homeassistant"}),
        output=output(tmp_path),
    )
    expected = {
        "homeassistant/binary_sensor/crowdwatch_lobby/status/config",
        "homeassistant/sensor/crowdwatch_lobby/hall_people/config",
        "homeassistant/sensor/crowdwatch_lobby/hall_door_people/config",
        "homeassistant/sensor/crowdwatch_lobby/hall_right_people/config",
        "homeassistant/sensor/crowdwatch_lobby/gate_people/config",
        "homeassistant/sensor/crowdwatch_lobby/gate_queue_people/config",
        "homeassistant/binary_sensor/crowdwatch_lobby/hall_door_alert/config",
        "homeassistant/binary_sensor/crowdwatch_lobby/hall_right_alert/config",
    }
    found: dict[str, bytes] = {}

    def discovered() -> bool:
        found.update(site_retained(broker, "homeassistant/#"))
        return set(found) >= expected

    run_until_settled(config, tmp_path, cli_env, discovered, "the discovery configs")
    assert set(found) == expected
    configs = {topic: json.loads(payload) for topic, payload in found.items()}
    assert [p for topic, c in configs.items() for p in problems(topic, c)] == []
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(set(unique_ids)) == len(unique_ids)

    site_device = configs["homeassistant/binary_sensor/crowdwatch_lobby/status/config"]["device"]
    devices = {json.dumps(c["device"], sort_keys=True) for c in configs.values()}
    assert len(devices) == 3  # the site, and one per camera
    for topic, c in configs.items():
        if topic.endswith("/status/config"):
            continue
        camera = "hall" if "/hall_" in topic else "gate"
        assert c["device"]["identifiers"] == [f"crowdwatch_lobby_{camera}"]
        assert c["device"]["via_device"] in site_device["identifiers"]  # grouped by site
        assert c["availability_mode"] == "all"
        assert [a["topic"] for a in c["availability"]] == [
            "crowdwatch/lobby/status",
            f"crowdwatch/lobby/{camera}/status",
        ]
        assert c["state_topic"].startswith(f"crowdwatch/lobby/{camera}/")
    door = configs["homeassistant/binary_sensor/crowdwatch_lobby/hall_door_alert/config"]
    assert (door["device_class"], door["payload_on"], door["payload_off"]) == (
        "occupancy",
        "raised",
        "cleared",
    )
    assert door["state_topic"] == "crowdwatch/lobby/hall/door/alert"
    queue = configs["homeassistant/sensor/crowdwatch_lobby/gate_queue_people/config"]
    assert (queue["state_class"], queue["unit_of_measurement"]) == ("measurement", "people")
    assert queue["value_template"] == "{{ value_json.count }}"
    # Every state topic holds what its template reads (retained JSON with `count` or `state`).
    states = site_retained(broker)
    for c in configs.values():
        payload = states[c["state_topic"]]
        if c["state_topic"].endswith("/status"):
            assert payload in (b"online", b"offline")
        else:
            assert ("count" if "unit_of_measurement" in c else "state") in json.loads(payload)
