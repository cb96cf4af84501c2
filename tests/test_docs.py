"""What the docs say about defaults and reasons is what the code does: configs/site.yaml's values
against the schema's defaults, the packaged threshold against the packaged checkpoint, the drop reasons
of docs/configuration.md against the code's lists, the credential and weights names of the deployment
example, the README's first-camera config against the schema and its commands against the CLI. And the
docs hold together: every relative link resolves, and the README stays short and written for users."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from crowdwatch.cli import COMMANDS
from crowdwatch.config.loader import load_config
from crowdwatch.config.mqtt import MqttSettings
from crowdwatch.config.schema import (
    CameraSettings,
    Config,
    MetricsSettings,
    ModelSettings,
    OutputSettings,
    SystemdSettings,
)
from crowdwatch.config.web import WebSettings
from crowdwatch.model.checkpoint import parse_meta, read_checkpoint_file
from crowdwatch.sinks.base import RAISED
from crowdwatch.sinks.csv import CsvSink
from crowdwatch.sinks.heatmap import HeatmapSink
from crowdwatch.sinks.mqtt import MqttSink
from crowdwatch.sinks.overlay import OverlaySink
from crowdwatch.telemetry.counts import DROP_REASONS
from crowdwatch.web.sink import LiveViewSink
from crowdwatch.weightsfile import PACKAGED_WEIGHTS

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in sorted((REPO / "docs").glob("*.md"))}
CONFIGURATION = DOCS["configuration.md"]
DEPLOYMENT = DOCS["deployment.md"]
MQTT = DOCS["mqtt.md"]
#: Every Markdown page a user reads, by path relative to the repository.
PAGES = {"README.md": README, "ARCHITECTURE.md": (REPO / "ARCHITECTURE.md").read_text()} | {
    f"docs/{name}": text for name, text in DOCS.items()
}
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
        "web": WebSettings,
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


def test_the_configuration_reference_lists_every_drop_and_loss_reason() -> None:
    frames = re.search(r"frames_dropped_total\{reason\}` \(([^)]*)\)", CONFIGURATION)
    assert frames is not None
    assert re.findall(r"`([a-z_]+)`", frames.group(1)) == list(DROP_REASONS)
    sinks = re.search(r"sink_lost_total\{sink, reason\}` \(([^)]*)\)", CONFIGURATION)
    assert sinks is not None
    sink_classes = (CsvSink, OverlaySink, HeatmapSink, MqttSink, LiveViewSink)
    declared = [*(r for sink in sink_classes for r in sink.LOSS_REASONS), RAISED]
    assert re.findall(r"`([a-z_]+)`", sinks.group(1)) == declared


def test_credential_names_follow_the_unit_s_load_credential() -> None:
    """The unit loads the credentials folder under one id, so file F is credential <id>_F."""
    unit = (REPO / "systemd" / "crowdwatch.service").read_text()
    credential_id = re.search(r"^LoadCredential=([a-z]+):/etc/crowdwatch/credentials$", unit, re.M)
    assert credential_id is not None
    texts = (SITE_YAML, *PAGES.values())
    names = [name for text in texts for name in re.findall(r"\$\{credential:([a-z_]+)\}", text)]
    assert len(names) >= 3, names
    for name in names:
        assert name.startswith(f"{credential_id.group(1)}_"), name
    assert "`/etc/crowdwatch/credentials/mqtt`" in MQTT and "${credential:camera_mqtt}" in MQTT


def test_the_deployment_example_names_a_crowdwatch_checkpoint() -> None:
    """A published .pth file needs `crowdwatch convert` first; the example names what `model.weights` runs."""
    weights = re.findall(r"/etc/crowdwatch/weights/[\w.]+", DEPLOYMENT)
    assert weights and all(w.endswith(".pt") for w in weights), weights


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces made hyphens."""
    text = re.sub(r"[`*_]|\[([^]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    kept = "".join(c for c in text if c in " -" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    body = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", body, re.M)}


def links(text: str) -> list[str]:
    body = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    body = re.sub(r"`[^`\n]*`", "", body)  # code spans are not links
    return re.findall(r"\]\(([^)\s]+)\)", body)


def test_links_are_found_outside_code() -> None:
    assert links("[a](b.md#c) `[d](e.md)`\n```\n[f](g.md)\n```\n![h](i.jpg)") == ["b.md#c", "i.jpg"]
    assert len(links(README)) >= 15


def test_github_anchor_follows_github_s_rule() -> None:
    assert github_anchor("Restarts, watchdog and stopping") == "restarts-watchdog-and-stopping"
    assert github_anchor("On every (re)connect") == "on-every-reconnect"
    assert github_anchor("`crowdwatch` on a GPU") == "crowdwatch-on-a-gpu"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_relative_link_points_to_a_file_and_anchor_that_exist(page: str) -> None:
    broken = []
    for link in links(PAGES[page]):
        if re.match(r"[a-z]+:", link):  # https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        path = (REPO / page).parent / target if target else REPO / page
        if not path.resolve().exists():
            broken.append(link)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path.read_text()):
            broken.append(link)
    assert not broken, f"{page}: {broken}"


#: Words of how the project was built, which mean nothing to a user.
PROCESS_WORDS = re.compile(
    r"\bsession \d|\bsessions? of 20|\bissue \d|\bissue's\b|\blent\b|\$OUT\b|\d+-minute call|"
    r"\bstage \d|\bstages? \d[a-z]?\b|\bwe tried\b",
    re.I,
)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_pages_carry_no_process_history(page: str) -> None:
    assert not PROCESS_WORDS.findall(PAGES[page])


def test_the_readme_stays_short() -> None:
    assert len(README.splitlines()) < 300


def test_the_readme_s_commands_are_the_cli_s() -> None:
    table = README[README.index("## Commands") : README.index("## Configuration")]
    assert set(re.findall(r"^\| `crowdwatch ([a-z-]+)", table, re.M)) == set(COMMANDS)


def test_the_first_camera_config_is_valid_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = README[README.index("## Your first camera") : README.index("## Commands")]
    assert "docs/configuration.md#a-first-config-by-hand" in section
    reference = (REPO / "docs" / "configuration.md").read_text()
    by_hand = reference[reference.index("## A first config by hand") :]
    by_hand = by_hand[: by_hand.index("\n## ", 1)]
    blocks = re.findall(r"^```yaml\n(.*?)^```", by_hand, re.M | re.S)
    assert len(blocks) == 1
    (tmp_path / "site.yaml").write_text(blocks[0])
    exported = re.search(r"^export ([A-Z_]+)=", by_hand, re.M)
    assert exported is not None
    monkeypatch.setenv(exported.group(1), "the-password")
    config = load_config(tmp_path / "site.yaml")
    assert [camera.id for camera in config.cameras] == ["entrance"]
    assert config.output.dir == tmp_path / "runs" / "site"
    assert "runs/site/counts-YYYY-MM-DD.csv" in section and "runs/site/snapshots/entrance.jpg" in section
    assert f"{config.metrics.address}:{config.metrics.port}/metrics" in section
