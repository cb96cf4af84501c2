"""The Prometheus scrape example and alert rules, checked by the real promtool (offline)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from support.dashboard import CONTRACT_METRICS

PROM_DIR = Path(__file__).resolve().parents[2] / "configs" / "prometheus"

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")


def _promtool(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *map(str, args)], capture_output=True, text=True, timeout=60)


def test_check_config():
    result = _promtool("check", "config", PROM_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_fleet_example_is_valid_and_labels_every_target_with_a_unique_site():
    result = _promtool("check", "config", PROM_DIR / "fleet.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    fleet = yaml.safe_load((PROM_DIR / "fleet.yml").read_text())
    groups = fleet["scrape_configs"][0]["static_configs"]
    sites = [group["labels"]["site"] for group in groups]
    assert len(sites) == len(set(sites)) >= 2
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", site) for site in sites)  # config `site` slugs


def test_check_rules():
    result = _promtool("check", "rules", PROM_DIR / "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    result = _promtool("test", "rules", PROM_DIR / "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_catch_a_wrong_threshold(tmp_path):
    """The unit tests are sensitive: raising the latency threshold past the test data makes them fail."""
    for name in ("alerts.yml", "alerts_test.yml"):
        shutil.copy(PROM_DIR / name, tmp_path / name)
    rules = tmp_path / "alerts.yml"
    text, n = re.subn(r"\) > 2$", ") > 5", rules.read_text(), flags=re.M)
    assert n == 1
    rules.write_text(text)
    result = _promtool("test", "rules", tmp_path / "alerts_test.yml")
    assert result.returncode != 0 and "CrowdwatchLatencyHigh" in result.stdout + result.stderr


def test_alerts_cover_the_issue_and_use_contract_metrics():
    rules = [r for g in yaml.safe_load((PROM_DIR / "alerts.yml").read_text())["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {
        "CrowdwatchCameraDown",
        "CrowdwatchNoFramesProcessed",
        "CrowdwatchOccupancyHigh",
        "CrowdwatchLatencyHigh",
    } <= names
    camera_down = next(r for r in rules if r["alert"] == "CrowdwatchCameraDown")
    assert camera_down["for"] == "1m"
    # The zone's own for_s holds the alert already: a `for:` here would hold it twice.
    assert "for" not in next(r for r in rules if r["alert"] == "CrowdwatchOccupancyHigh")
    mqtt = next(r for r in rules if r["alert"] == "CrowdwatchMqttDisconnected")
    assert mqtt["expr"] == "crowdwatch_mqtt_connected == 0"
    used = {m for r in rules for m in re.findall(r"crowdwatch_[a-z_]+", r["expr"])}
    histogram_series = {f"{m}_{s}" for m in CONTRACT_METRICS for s in ("bucket", "sum", "count")}
    assert used and used <= CONTRACT_METRICS | histogram_series
    tested = set(re.findall(r"alertname: (\w+)", (PROM_DIR / "alerts_test.yml").read_text()))
    assert tested == names
