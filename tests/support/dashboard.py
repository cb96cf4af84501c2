"""The Grafana dashboard JSON and its panel queries, for the dashboard test and the live Prometheus test."""

from __future__ import annotations

import json
from pathlib import Path

GRAFANA_DIR = Path(__file__).resolve().parents[2] / "configs" / "grafana"
DASHBOARD = GRAFANA_DIR / "crowdwatch.json"

#: The metric names the dashboard and alert rules rely on (the contract the pipeline must keep).
CONTRACT_METRICS = {
    "crowdwatch_people",
    "crowdwatch_zone_people",
    "crowdwatch_people_smoothed",
    "crowdwatch_zone_people_smoothed",
    "crowdwatch_zone_alert",
    "crowdwatch_frames_read_total",
    "crowdwatch_frames_processed_total",
    "crowdwatch_frames_dropped_total",
    "crowdwatch_reconnects_total",
    "crowdwatch_camera_up",
    "crowdwatch_last_frame_timestamp_seconds",
    "crowdwatch_inference_seconds",
    "crowdwatch_end_to_end_latency_seconds",
    "crowdwatch_batch_size",
    "crowdwatch_build_info",
    "crowdwatch_sink_lost_total",
    "crowdwatch_sink_up",
    "crowdwatch_mqtt_connected",
    "crowdwatch_line_crossings_total",
    "crowdwatch_zone_dwell_seconds",
    "crowdwatch_zone_lingering",
}


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def data_panels(dashboard: dict) -> list[dict]:
    """Every non-row panel, including those nested in collapsed rows."""
    out = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def panel_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL expr) for every target of every panel."""
    return [(p["title"], t["expr"]) for p in data_panels(dashboard) for t in p["targets"]]
