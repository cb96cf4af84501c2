"""Home Assistant discovery payloads, built without a broker: the documented schema, stable ids, and
two entities that would share an id refused (the broker round trip is in tests/system)."""

from __future__ import annotations

import json

import pytest
from support.homeassistant_schema import problems

from crowdwatch.sinks.homeassistant import discovery_filter, discovery_messages, node_id
from crowdwatch.sinks.mqtt_messages import CameraLayout

CAMERAS = (CameraLayout("hall", ("door", "right"), ("door",)), CameraLayout("gate", ("queue",), ()))


def test_payloads_follow_the_documented_schema_and_ids_are_stable() -> None:
    messages = discovery_messages("homeassistant", "acme/stations", "lobby", CAMERAS, version="9.9")
    assert all(m.retain for m in messages)
    configs = {m.topic: json.loads(m.payload) for m in messages}
    assert [p for topic, c in configs.items() for p in problems(topic, c)] == []
    node = node_id("acme/stations", "lobby")
    assert node == "acme_stations_lobby"
    assert (
        configs[f"homeassistant/sensor/{node}/hall_door_people/config"]["unique_id"]
        == f"{node}_hall_door_people"
    )
    assert configs[f"homeassistant/sensor/{node}/hall_door_people/config"]["state_topic"] == (
        "acme/stations/lobby/hall/door/count"
    )
    again = discovery_messages("homeassistant", "acme/stations", "lobby", CAMERAS, version="9.9")
    assert again == messages
    assert discovery_filter("homeassistant", node) == f"homeassistant/+/{node}/+/config"


def test_the_schema_check_finds_abbreviations_unknown_and_missing_keys() -> None:
    good = json.loads(discovery_messages("homeassistant", "crowdwatch", "lobby", CAMERAS)[1].payload)
    topic = "homeassistant/sensor/crowdwatch_lobby/hall_people/config"
    assert problems(topic, good) == []
    bad = {**good, "stat_cla": "measurement", "colour": "red"}
    del bad["state_topic"]
    assert sorted(problems(topic, bad)) == sorted(
        [
            f"{topic}: abbreviated key stat_cla",
            f"{topic}: unknown key colour",
            f"{topic}: missing state_topic",
        ]
    )


def test_two_entities_with_the_same_id_are_refused() -> None:
    cameras = (CameraLayout("a_b", ("c",), ()), CameraLayout("a", ("b_c",), ()))
    with pytest.raises(ValueError, match="rename a camera or zone"):
        discovery_messages("homeassistant", "crowdwatch", "lobby", cameras)
