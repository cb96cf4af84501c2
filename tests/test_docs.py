"""What the docs say about defaults and reasons is what the code does: configs/site.yaml's values
against the schema's defaults, the packaged threshold against the packaged checkpoint, the README's
drop reasons against the code's lists, and the credential and weights names of the deployment example."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from crowdwatch.config.mqtt import MqttSettings
from crowdwatch.config.schema import (
    CameraSettings,
    Config,
    MetricsSettings,
    ModelSettings,
    OutputSettings,
    SystemdSettings,
)
from crowdwatch.model.checkpoint import parse_meta, read_checkpoint_file
from crowdwatch.sinks.mqtt import DROP_REASONS as MQTT_DROP_REASONS
from crowdwatch.telemetry.counts import DROP_REASONS
from crowdwatch.weightsfile import PACKAGED_WEIGHTS

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
SITE_YAML = (REPO / "configs" / "site.yaml").read_text()
#: site.yaml keys set to a value other than the default on purpose (an example site).
NOT_DEFAULTS = {"output.dir"}


def scalar_defaults(model: type[BaseModel], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            out.update(scalar_defaults(type(default), f"{prefix}{name}."))
        elif isinstance(default, (int, float, str, bool)) or default is None:
            out[f"{prefix}{name}"] = default
    return out


def flatten(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_site_yaml_shows_every_section_option_with_its_default() -> None:
    site = yaml.safe_load(SITE_YAML)
    sections: dict[str, type[BaseModel]] = {
        "model": ModelSettings,
        "defaults": CameraSettings,
        "output": OutputSettings,
        "metrics": MetricsSettings,
        "mqtt": MqttSettings,
        "systemd": SystemdSettings,
    }
    for section, model in sections.items():
        documented = flatten(site[section], f"{section}.")
        defaults = scalar_defaults(model, f"{section}.")
        defaults.pop("output.dir", None)  # a Path, resolved against the config's folder
        missing = sorted(set(defaults) - set(documented))
        assert not missing, f"site.yaml does not show {missing}"
        wrong = {
            k: (documented[k], v) for k, v in defaults.items() if documented[k] != v and k not in NOT_DEFAULTS
        }
        assert not wrong, f"site.yaml value != default: {wrong}"
    assert set(Config.model_fields) == {"site", "cameras", *sections}


def test_the_documented_packaged_threshold_is_the_checkpoint_s() -> None:
    threshold = parse_meta(PACKAGED_WEIGHTS, read_checkpoint_file(PACKAGED_WEIGHTS)).default_threshold
    said = re.findall(r"packaged weights: ([0-9.]+)\)", SITE_YAML)
    assert said == [f"{threshold:g}"], said
    assert f"threshold {threshold:g})" in README  # the weights box at the top


def test_the_readme_lists_every_drop_reason() -> None:
    frames = re.search(r"frames_dropped_total\{reason\}` \(([^)]*)\)", README)
    assert frames is not None
    assert re.findall(r"`([a-z_]+)`", frames.group(1)) == list(DROP_REASONS)
    mqtt = re.search(r"mqtt_dropped_messages_total\{reason\}` \(([^)]*)\)", README)
    assert mqtt is not None
    assert re.findall(r"`([a-z_]+)`", mqtt.group(1)) == list(MQTT_DROP_REASONS)


def test_credential_names_follow_the_unit_s_load_credential() -> None:
    """The unit loads the credentials folder under one id, so file F is credential <id>_F."""
    unit = (REPO / "systemd" / "crowdwatch.service").read_text()
    credential_id = re.search(r"^LoadCredential=([a-z]+):/etc/crowdwatch/credentials$", unit, re.M)
    assert credential_id is not None
    for text in (README, SITE_YAML):
        for name in re.findall(r"\$\{credential:([a-z_]+)\}", text):
            assert name.startswith(f"{credential_id.group(1)}_"), name
    assert "`/etc/crowdwatch/credentials/mqtt`" in README and "${credential:camera_mqtt}" in README


def test_the_deployment_example_names_a_crowdwatch_checkpoint() -> None:
    """A published .pth file needs `crowdwatch convert` first; the example names what `model.weights` runs."""
    deployment = README[README.index("## Deployment") : README.index("## The model")]
    weights = re.findall(r"/etc/crowdwatch/weights/[\w.]+", deployment)
    assert weights and all(w.endswith(".pt") for w in weights), weights
