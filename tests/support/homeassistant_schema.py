"""Home Assistant's MQTT discovery schema, as documented (home-assistant.io/integrations/mqtt/,
sensor.mqtt/, binary_sensor.mqtt/): the keys each component accepts, the required ones and the allowed
values crowdwatch uses. Full key names only; the documented abbreviations (``stat_t``, ``dev``, ...) are
listed so that a payload using one is reported as such. No tests live here."""

from __future__ import annotations

import re
from typing import Any

TOPIC = re.compile(
    r"^(?P<prefix>.+?)/(?P<component>\w+)/(?:(?P<node>[a-zA-Z0-9_-]+)/)?(?P<object>[a-zA-Z0-9_-]+)/config$"
)

_COMMON = {
    "availability", "availability_mode", "availability_template", "availability_topic", "default_entity_id",
    "device", "device_class", "enabled_by_default", "encoding", "entity_category", "entity_picture",
    "expire_after", "force_update", "icon", "json_attributes_template", "json_attributes_topic", "name",
    "object_id", "origin", "payload_available", "payload_not_available", "platform", "qos", "state_topic",
    "unique_id", "value_template",
}  # fmt: skip
KEYS = {
    "sensor": _COMMON
    | {
        "last_reset_value_template",
        "options",
        "state_class",
        "suggested_display_precision",
        "unit_of_measurement",
    },
    "binary_sensor": _COMMON | {"off_delay", "payload_off", "payload_on"},
}
REQUIRED = {"sensor": {"state_topic"}, "binary_sensor": {"state_topic"}}
DEVICE_KEYS = {
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model", "model_id",
    "name", "serial_number", "suggested_area", "sw_version", "via_device",
}  # fmt: skip
AVAILABILITY_KEYS = {"payload_available", "payload_not_available", "topic", "value_template"}
ABBREVIATIONS = {
    "stat_t", "dev", "avty", "avty_t", "uniq_id", "val_tpl", "unit_of_meas", "stat_cla", "dev_cla",
    "pl_on", "pl_off", "ids", "mf", "mdl", "sw", "via_dev", "t", "pl_avail", "pl_not_avail",
}  # fmt: skip
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
BINARY_DEVICE_CLASSES = {"connectivity", "occupancy", "presence", "motion", "problem", "running"}
AVAILABILITY_MODES = {"all", "any", "latest"}
ENTITY_CATEGORIES = {"config", "diagnostic"}


def problems(topic: str, config: dict[str, Any]) -> list[str]:
    """What in one discovery message does not follow the documented schema (empty: it does)."""
    match = TOPIC.match(topic)
    if match is None:
        return [f"{topic}: not <prefix>/<component>/[<node_id>/]<object_id>/config"]
    component = match["component"]
    if component not in KEYS:
        return [f"{topic}: component {component} not checked here"]
    out = [f"{topic}: abbreviated key {k}" for k in config if k in ABBREVIATIONS]
    out += [
        f"{topic}: unknown key {k}" for k in config if k not in KEYS[component] and k not in ABBREVIATIONS
    ]
    out += [f"{topic}: missing {k}" for k in REQUIRED[component] - set(config)]
    out += [f"{topic}: {problem}" for problem in _device_problems(config) + _availability_problems(config)]
    out += [f"{topic}: {problem}" for problem in _enum_problems(component, config)]
    return out


def _device_problems(config: dict[str, Any]) -> list[str]:
    if "device" not in config:
        return []
    device = config["device"]
    out = [f"unknown device key {k}" for k in device if k not in DEVICE_KEYS]
    if not device.get("identifiers") and not device.get("connections"):
        out.append("device needs identifiers or connections")
    if "unique_id" not in config:
        out.append("a device needs the entity's unique_id")
    return out


def _availability_problems(config: dict[str, Any]) -> list[str]:
    out = []
    for entry in config.get("availability", []):
        out += [f"unknown availability key {k}" for k in entry if k not in AVAILABILITY_KEYS]
        if "topic" not in entry:
            out.append("availability entry without topic")
    if "availability" in config and "availability_topic" in config:
        out.append("availability and availability_topic together")
    return out


def _enum_problems(component: str, config: dict[str, Any]) -> list[str]:
    """Values outside the documented choices (each key checked only when present)."""
    allowed = {"availability_mode": AVAILABILITY_MODES, "entity_category": ENTITY_CATEGORIES}
    if component == "sensor":
        allowed["state_class"] = STATE_CLASSES
    if component == "binary_sensor":
        allowed["device_class"] = BINARY_DEVICE_CLASSES
    return [
        f"{key} {config[key]}"
        for key, values in allowed.items()
        if key in config and config[key] not in values
    ]
