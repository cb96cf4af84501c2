"""The Grafana dashboard: round-trip through Grafana's own SDK, units, variables and metric names.

No Grafana server can run here; `grafana-foundation-sdk` parses the JSON into Grafana's typed models
and serialises it back, so a key Grafana's schema does not know (a typo, a misplaced option) is lost in
the round trip and the test fails. Whether each query returns data is checked against a real
Prometheus in test_systemd_live.py.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from support.dashboard import CONTRACT_METRICS, GRAFANA_DIR, data_panels, load_dashboard, panel_queries

HISTOGRAMS = {
    "crowdwatch_inference_seconds",
    "crowdwatch_end_to_end_latency_seconds",
    "crowdwatch_batch_size",
    "crowdwatch_zone_dwell_seconds",
}


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bcrowdwatch_[a-z_]+", expr))


def base_metric(series: str) -> str:
    """crowdwatch_batch_size_bucket -> crowdwatch_batch_size; other names unchanged."""
    stem, _, suffix = series.rpartition("_")
    return stem if suffix in ("bucket", "sum", "count") and stem in HISTOGRAMS else series


def _lost(original, parsed, path="") -> list[str]:
    """Paths present in `original` but missing or different in `parsed` (extra keys in parsed are fine)."""
    if isinstance(original, dict):
        if not isinstance(parsed, dict):
            return [f"{path}: not an object after round trip"]
        out = []
        for key, value in original.items():
            where = f"{path}/{key}"
            out += [f"{where}: key lost"] if key not in parsed else _lost(value, parsed[key], where)
        return out
    if isinstance(original, list):
        if not isinstance(parsed, list) or len(parsed) != len(original):
            return [f"{path}: list changed"]
        pairs = enumerate(zip(original, parsed, strict=True))
        return [p for i, (a, b) in pairs for p in _lost(a, b, f"{path}[{i}]")]
    return [] if original == parsed else [f"{path}: {original!r} became {parsed!r}"]


def _round_trip(data: dict) -> dict:
    sdk = pytest.importorskip("grafana_foundation_sdk")
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    assert sdk is not None
    register_default_plugins()  # panel options and Prometheus queries decode into typed models
    return json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))


def test_round_trips_through_grafana_sdk_without_loss():
    dashboard = load_dashboard()
    assert _lost(dashboard, _round_trip(dashboard)) == []


def test_round_trip_would_catch_an_unknown_key():
    dashboard = load_dashboard()
    data_panels(dashboard)[0]["fieldConfig"]["defaults"]["unitt"] = "s"
    data_panels(dashboard)[0]["targets"][0]["exprr"] = "up"
    lost = _lost(dashboard, _round_trip(dashboard))
    assert any(p.endswith("/unitt: key lost") for p in lost)
    assert any(p.endswith("/exprr: key lost") for p in lost)


def test_every_panel_has_a_known_unit():
    units = pytest.importorskip("grafana_foundation_sdk.models.units")
    known = {v for k, v in vars(units).items() if not k.startswith("_") and isinstance(v, str)}
    for panel in data_panels(load_dashboard()):
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit in known or (unit or "").startswith("suffix:"), (panel["title"], unit)


def test_queries_cover_every_contract_metric_and_nothing_else():
    used: set[str] = set()
    for title, expr in panel_queries(load_dashboard()):
        names = metric_names(expr)
        assert names, title
        used |= {base_metric(n) for n in names}
    assert used == CONTRACT_METRICS


def test_latency_panels_show_p50_and_p95():
    exprs = [e for _, e in panel_queries(load_dashboard())]
    for histogram in ("crowdwatch_inference_seconds", "crowdwatch_end_to_end_latency_seconds"):
        quantiles = {
            m
            for e in exprs
            if f"{histogram}_bucket" in e
            for m in re.findall(r"histogram_quantile\((0\.\d+),", e)
        }
        assert quantiles == {"0.5", "0.95"}, histogram


def test_camera_variable_filters_every_per_camera_query():
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    camera = variables["camera"]
    assert camera["type"] == "query" and camera["multi"] and camera["includeAll"]
    assert re.search(r"label_values\(crowdwatch_camera_up(\{[^}]*\})?, camera\)", camera["query"]["query"])
    assert variables["datasource"]["query"] == "prometheus"
    per_camera = CONTRACT_METRICS - {
        "crowdwatch_inference_seconds",
        "crowdwatch_batch_size",
        "crowdwatch_build_info",
        "crowdwatch_sink_lost_total",  # per sink, not per camera
        "crowdwatch_sink_up",
        "crowdwatch_mqtt_connected",  # per box
    }
    for title, expr in panel_queries(dashboard):
        for name in metric_names(expr) & {*per_camera, *(f"{m}_bucket" for m in per_camera)}:
            assert re.search(rf'{name}\{{[^}}]*camera=~"\$camera"', expr), (title, name)


def test_site_variable_filters_every_query_without_a_scrape_label():
    """Many boxes, one Prometheus: the site comes from each box's own crowdwatch_build_info{site}, not
    from a label the scrape config must add; the hidden `instance` variable holds the chosen sites'
    boxes, and every query filters on it."""
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names.index("site") < names.index("instance") < names.index("camera")  # each reads the one before
    site, instance = variables["site"], variables["instance"]
    assert site["type"] == "query" and site["multi"] and site["includeAll"] and site["allValue"] == ".*"
    assert "label_values(crowdwatch_build_info, site)" in site["query"]["query"]
    assert instance["query"]["query"] == 'label_values(crowdwatch_build_info{site=~"$site"}, instance)'
    assert (
        instance["hide"] == 2 and instance["includeAll"] and "allValue" not in instance
    )  # All = those found
    assert 'instance=~"$instance"' in variables["camera"]["query"]["query"]  # cameras of the chosen sites
    for title, expr in panel_queries(dashboard):
        assert "site" not in expr, title
        for selector in re.findall(r"\bcrowdwatch_[a-z_]+(?:\{[^}]*\})?", expr):
            assert re.search(r'\{[^}]*instance=~"\$instance"', selector), (title, selector)
        if "sum by (" in expr and "camera" in expr:
            # camera ids are unique per box only: per-camera sums keep the boxes apart
            by_camera = [by for by in re.findall(r"sum by \(([^)]*)\)", expr) if "camera" in by]
            assert all("instance" in by for by in by_camera), title


def test_mqtt_panels_show_the_connection_and_lost_messages():
    exprs = {title: expr for title, expr in panel_queries(load_dashboard())}
    assert exprs["MQTT connected"].startswith("crowdwatch_mqtt_connected{")
    assert re.search(r'crowdwatch_sink_lost_total\{[^}]*sink="mqtt"', exprs["MQTT messages lost"])
    assert "by (instance, reason)" in exprs["MQTT messages lost"]


def test_the_sinks_lost_rows_panel_leaves_mqtt_to_its_own():
    """One family for every sink's losses: the Sinks row shows what is missing from the box's own output
    (by sink and reason), the MQTT row the messages that never reached the broker."""
    exprs = {title: expr for title, expr in panel_queries(load_dashboard())}
    assert re.search(r'crowdwatch_sink_lost_total\{[^}]*sink!="mqtt"', exprs["Lost rows per sink"])
    assert "by (instance, sink, reason)" in exprs["Lost rows per sink"]


def test_panels_have_unique_ids_and_do_not_overlap():
    panels = load_dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, p["title"]
        cells |= mine


def test_provisioning_files():
    sources = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "crowdwatch.yaml").read_text())
    assert sources["apiVersion"] == 1 and sources["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "crowdwatch.yaml").read_text())
    assert providers["apiVersion"] == 1
    assert providers["providers"][0]["type"] == "file" and providers["providers"][0]["options"]["path"]
