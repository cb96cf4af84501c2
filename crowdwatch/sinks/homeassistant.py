"""Home Assistant MQTT discovery: the entities a site's cameras and zones appear as, without YAML.

Single-component discovery (``<discovery_prefix>/<component>/<node_id>/<object_id>/config``, retained,
full key names, no abbreviations), as documented at https://www.home-assistant.io/integrations/mqtt/:

- one device for the site (the box), with a ``binary_sensor`` (``connectivity``) on its ``status``;
- one device per camera, ``via_device`` the site's, with a ``sensor`` for the camera's count and one per
  zone's count (``state_class: measurement``, unit ``people``) and a ``binary_sensor`` per zone alert
  (``device_class: occupancy``, on while ``raised``);
- every camera entity is available only while both the site's and the camera's ``status`` say
  ``online`` (``availability_mode: all``): the site's last will and a camera going down both make it
  unavailable.

``node_id`` is ``<topic_prefix>_<site>`` made safe for a topic level (``crowdwatch_lobby``); unique ids
are ``<node_id>_<camera>[_<zone>]_<what>``, stable as long as the prefix, site, camera and zone ids are.
A zone removed from the config leaves its config topic behind; the sink finds it among the retained
topics under :func:`discovery_filter` and publishes an empty retained payload, which removes the entity.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from crowdwatch import __version__
from crowdwatch.sinks.mqtt_messages import OFFLINE, ONLINE, CameraLayout, Message, SiteTopics, to_json

__all__ = ["discovery_filter", "discovery_messages", "node_id"]

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
MANUFACTURER = "crowdwatch"


def node_id(topic_prefix: str, site: str) -> str:
    """The discovery topics' node level for a site: ``crowdwatch/lobby`` -> ``crowdwatch_lobby``."""
    return _UNSAFE.sub("_", f"{topic_prefix}_{site}")


def discovery_filter(discovery_prefix: str, node: str) -> str:
    """The filter matching every discovery config topic of the site (any component)."""
    return f"{discovery_prefix}/+/{node}/+/config"


def discovery_messages(
    discovery_prefix: str,
    topic_prefix: str,
    site: str,
    cameras: Iterable[CameraLayout],
    *,
    version: str = __version__,
) -> list[Message]:
    """Every discovery config of the site, retained. ValueError when two entities would share an id
    (camera ``a_b`` zone ``c`` and camera ``a`` zone ``b_c``)."""
    topics = SiteTopics(f"{topic_prefix}/{site}")
    node = node_id(topic_prefix, site)
    site_device = {
        "identifiers": [node],
        "name": f"crowdwatch {site}",
        "manufacturer": MANUFACTURER,
        "model": "crowdwatch site",
        "sw_version": version,
    }
    configs: list[tuple[str, str, dict[str, Any]]] = [
        (
            "binary_sensor",
            "status",
            {
                "name": "Online",
                "unique_id": f"{node}_status",
                "state_topic": topics.status,
                "payload_on": ONLINE.decode(),
                "payload_off": OFFLINE.decode(),
                "device_class": "connectivity",
                "entity_category": "diagnostic",
                "device": site_device,
            },
        )
    ]
    for camera in cameras:
        cam = camera.id
        device = {
            "identifiers": [f"{node}_{cam}"],
            "name": f"{site} {cam}",
            "manufacturer": MANUFACTURER,
            "model": "crowdwatch camera",
            "sw_version": version,
            "via_device": node,
        }
        common = {
            "availability": [
                {"topic": t, "payload_available": ONLINE.decode(), "payload_not_available": OFFLINE.decode()}
                for t in (topics.status, topics.camera_status(cam))
            ],
            "availability_mode": "all",
            "device": device,
        }
        configs.append(("sensor", f"{cam}_people", _people("People", topics.count(cam), common)))
        for zone in camera.zones:
            configs.append(
                (
                    "sensor",
                    f"{cam}_{zone}_people",
                    _people(f"{zone} people", topics.zone_count(cam, zone), common),
                )
            )
        for zone in camera.alert_zones:
            alert = {
                "name": f"{zone} occupancy alert",
                "state_topic": topics.alert(cam, zone),
                "value_template": "{{ value_json.state }}",
                "payload_on": "raised",
                "payload_off": "cleared",
                "device_class": "occupancy",
                **common,
            }
            configs.append(("binary_sensor", f"{cam}_{zone}_alert", alert))
    messages, seen = [], set()
    for component, object_id, config in configs:
        unique_id = config.setdefault("unique_id", f"{node}_{object_id}")
        if (component, object_id) in seen:
            raise ValueError(
                f"mqtt.homeassistant: two {component} entities of site {site} would both be {unique_id}: "
                "rename a camera or zone"
            )
        seen.add((component, object_id))
        topic = f"{discovery_prefix}/{component}/{node}/{object_id}/config"
        messages.append(Message(topic, to_json(config), True))
    return messages


def _people(name: str, state_topic: str, common: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "state_topic": state_topic,
        "value_template": "{{ value_json.count }}",
        "unit_of_measurement": "people",
        "state_class": "measurement",
        "icon": "mdi:account-group",
        **common,
    }
