"""A fleet in miniature: two `crowdwatch run` processes (two boxes, each with its own cameras and site id)
publish to one mosquitto on 127.0.0.1, and one subscriber sees both sites by topic wildcard.
"""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from support.mosquitto import Mosquitto, Subscriber, require_mosquitto
from support.pipeline_harness import PipelineProcess, write_config

from crowdwatch.demo import make_demo_clip

BOX, BOX_PASSWORD = "box", "Fleet-Box-6610"
OPS, OPS_PASSWORD = "ops", "Fleet-Ops-2093"
SITES = {"north": ["gate", "hall"], "south": ["platform"]}


def box_config(directory: Path, site: str, cameras: list[str], port: int) -> Path:
    directory.mkdir()
    entries: list[dict[str, Any]] = []
    for i, camera in enumerate(cameras):
        clip = make_demo_clip(
            directory / f"{camera}.mp4", width=160, height=96, seconds=2, fps=8, people=6 + i
        )
        # An alert as soon as the left half holds anyone: the worker's alert events reach the broker.
        alert = {"high": 0.5, "low": 0}
        zones = [{"id": "left", "polygon": [[0, 0], [80, 0], [80, 96], [0, 96]], "alert": alert}]
        entries.append({"id": camera, "url": str(clip), "fps": 2, "loop": True, "zones": zones})
    mqtt = {
        "enabled": True,
        "port": port,
        "username": BOX,
        "password": "${env:CW_MQTT_PASSWORD}",
        "reconnect": {"initial_s": 1, "max_s": 2},
    }
    output = {"dir": str(directory / "out"), "snapshots": {"enabled": False}}
    return write_config(directory / "site.yaml", entries, site=site, mqtt=mqtt, output=output)


def test_two_boxes_one_broker_one_subscriber_sees_both_sites(tmp_path: Path, cli_env: dict[str, str]) -> None:
    require_mosquitto()
    broker = Mosquitto(tmp_path / "broker", {BOX: BOX_PASSWORD, OPS: OPS_PASSWORD}).start()
    cli_env["CW_MQTT_PASSWORD"] = BOX_PASSWORD
    ops = Subscriber(broker.port, OPS, OPS_PASSWORD, ["crowdwatch/+/status", "crowdwatch/+/+/count"])
    zones = Subscriber(broker.port, OPS, OPS_PASSWORD, ["crowdwatch/+/+/+/count", "crowdwatch/+/+/+/alert"])
    boxes = {
        site: PipelineProcess(
            box_config(tmp_path / site, site, cameras, broker.port), tmp_path / site, cli_env
        )
        for site, cameras in SITES.items()
    }
    expected = {f"crowdwatch/{site}/{camera}/count" for site, cameras in SITES.items() for camera in cameras}
    try:
        with ThreadPoolExecutor(len(boxes)) as pool:  # the boxes boot side by side, as a fleet would
            list(pool.map(PipelineProcess.start, boxes.values()))
        ops.wait_for(
            "counts of every camera of both sites",
            lambda: expected <= {m.topic for m in ops.received("crowdwatch/+/+/count")},
            timeout=60,
        )
        for site, box in boxes.items():
            assert ops.received(f"crowdwatch/{site}/status")[-1].payload == b"online"
            assert box.value("crowdwatch_mqtt_connected") == 1
        with ThreadPoolExecutor(len(boxes)) as pool:
            stopped = list(pool.map(lambda box: box.signal(signal.SIGTERM), boxes.values()))
        assert [rc for rc, _ in stopped] == [0, 0], [box.logs()[-2000:] for box in boxes.values()]
        ops.wait_for(
            "both sites offline",
            lambda: all(
                ops.received(f"crowdwatch/{site}/status")[-1].payload == b"offline" for site in SITES
            ),
            timeout=10,
        )
    finally:
        for box in boxes.values():
            box.close()
        ops.close()
        zones.close()
        broker.stop()
    for message in ops.received("crowdwatch/+/+/count"):
        _, site, camera, _ = message.topic.split("/")
        data = message.json()
        assert (data["site"], data["camera"]) == (site, camera) and camera in SITES[site]
        assert data["count"] >= 0 and data["raw_count"] >= 0
    zone_topics = {m.topic for m in zones.received("crowdwatch/+/+/+/count")}
    assert zone_topics == {
        f"crowdwatch/{site}/{camera}/left/count" for site, cams in SITES.items() for camera in cams
    }
    for site, box in boxes.items():
        final = box.final_counts()
        published = ops.received(f"crowdwatch/{site}/{SITES[site][0]}/count")
        # Every processed frame of the camera was published (a clean stop flushes the outbox).
        assert len(published) == final[SITES[site][0]]["processed"] - final[SITES[site][0]]["sink_overload"]
        assert "Traceback" not in box.logs() and BOX_PASSWORD not in box.logs()
    # Alert events from the running pipeline: a camera whose zone counts showed the alert raised has a
    # "raised" event (threshold = high) first; one whose counts never did has none (only the state at
    # connect, which has no count).
    raised_somewhere = False
    for site, cameras in SITES.items():
        for camera in cameras:
            counts = [m.json() for m in zones.received(f"crowdwatch/{site}/{camera}/left/count")]
            states = [m.json() for m in zones.received(f"crowdwatch/{site}/{camera}/left/alert")]
            # On connect each alert zone's current state comes first: cleared, nothing held yet.
            assert states and (states[0]["state"], states[0]["count"], states[0]["since"]) == (
                "cleared",
                None,
                None,
            )
            events = [e for e in states if e["count"] is not None]
            assert any(c["alert"] for c in counts) == bool(events), (site, camera, counts[-3:], events)
            if events:
                raised_somewhere = True
                first = events[0]
                assert (first["state"], first["threshold"], first["zone"]) == ("raised", 0.5, "left")
                assert first["count"] >= 0.5 and first["since_timestamp"] <= first["timestamp"]
    assert raised_somewhere, "no camera raised its alert: the demo clips put people in the left half"
