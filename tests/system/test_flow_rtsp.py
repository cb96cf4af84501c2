"""Lines and dwell through `crowdwatch run` on a real RTSP stream: a clip with known crossings served
by tests/support/rtsp_server.py, the crossings read back from the CSV on disk, from /metrics and from
a real mosquitto, and the overlay snapshot decoded.

The clip (10 s, 10 frames/s): person A stands above the line for 2 s, walks down across it in 4 s
and stands below it (inside the zone) for 4 s; person B does the opposite on the other side of the
frame, starting inside the zone. So each play of the clip is one crossing each way. The stream ends
with the file and the camera reconnects, replaying it: the test waits for the first play's crossings
and then checks that every output tells the same totals, each way. The people walk slowly and stand
at both ends, so that any processing rate of one frame every 2 s or faster sees each of them on both
sides: the test does not depend on how fast the model runs on this machine.
"""

from __future__ import annotations

import csv
import signal
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.mosquitto import BOX_PASSWORD, SUB, SUB_PASSWORD, Mosquitto, Subscriber
from support.pipeline_harness import read_csv_rows, running_pipeline, write_config
from support.rtsp_fixtures import ffmpeg_missing, requires_rtsp, start_server

from crowdwatch.demo import _background, draw_person
from crowdwatch.drawing import LINE_COLOR

pytestmark = [requires_rtsp, pytest.mark.rtsp, pytest.mark.slow]

WIDTH, HEIGHT, FPS, RADIUS = 320, 240, 10, 9
LINE = {"id": "door", "points": [[20, 120], [300, 120]], "in": "entering", "out": "leaving"}
LOWER = [[0, 135], [320, 135], [320, 240], [0, 240]]


def person_y(t: float, start: float, end: float) -> float:
    """Stand at ``start`` for 2 s, walk to ``end`` in 4 s, stand there."""
    return start + (end - start) * min(1.0, max(0.0, (t - 2.0) / 4.0))


def write_gate_clip(path: Path) -> Path:
    background = _background(WIDTH, HEIGHT, np.random.default_rng(1))
    frames = path.parent / "frames"
    frames.mkdir()
    for i in range(10 * FPS):
        t = i / FPS
        frame = background.copy()
        draw_person(frame, 80, person_y(t, 50, 190), RADIUS, (60, 160, 200))  # A: down = "entering"
        draw_person(frame, 240, person_y(t, 190, 50), RADIUS, (200, 80, 120))  # B: up = "leaving"
        cv2.imwrite(str(frames / f"{i:04d}.png"), frame)
    cmd = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
        "-framerate", str(FPS), "-i", str(frames / "%04d.png"),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
        "-g", str(FPS), "-threads", "1", str(path),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return path


def test_line_crossings_and_dwell_from_an_rtsp_camera_reach_csv_metrics_mqtt_and_overlay(
    tmp_path: Path, cli_env: dict[str, str], broker: Mosquitto
) -> None:
    assert ffmpeg_missing() is None
    server = start_server({"/gate": f"file:{write_gate_clip(tmp_path / 'gate.mp4')}"})
    camera = {
        "id": "entrance",
        "url": server.url("/gate"),
        "fps": 5,
        "reconnect": {"initial_s": 0.5, "max_s": 1},
        "lines": [LINE],
        "tracking": {"max_speed_px_s": 200, "max_gap_s": 10},  # linked however slow this machine is
        "zones": [{"id": "lower", "polygon": LOWER, "dwell": True}],
    }
    mqtt = {"enabled": True, "port": broker.port, "username": "box", "password": "${env:CW_MQTT_PASSWORD}"}
    out = tmp_path / "out"
    output = {"dir": str(out), "csv": {"flush_interval_s": 0.5}, "snapshots": {"interval_s": 0.5}}
    config = write_config(tmp_path / "site.yaml", [camera], site="lobby", mqtt=mqtt, output=output)
    cli_env["CW_MQTT_PASSWORD"] = BOX_PASSWORD
    sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/lobby/entrance/door/#"])
    seen: dict[str, tuple[int, int]] = {}

    def outputs_agree() -> bool:
        """/metrics, the CSV on disk, the MQTT events and the last retained totals tell the same."""
        samples = pipeline.scrape()
        seen["metrics"] = (
            int(samples.get(crossing("entering"), 0)),
            int(samples.get(crossing("leaving"), 0)),
        )
        rows = csv_rows(out)
        seen["csv"] = (sum(int(r["in_door"]) for r in rows), sum(int(r["out_door"]) for r in rows))
        names = [m.json()["name"] for m in sub.received("crowdwatch/lobby/entrance/door/crossing")]
        seen["events"] = (names.count("entering"), names.count("leaving"))
        totals = sub.received("crowdwatch/lobby/entrance/door/crossings")
        seen["totals"] = (totals[-1].json()["in"], totals[-1].json()["out"]) if totals else (0, 0)
        seen["dwells"] = (int(samples.get(DWELL_COUNT, 0)), 0)
        return min(seen["metrics"]) >= 1 and len(set(seen.values()) - {seen["dwells"]}) == 1

    try:
        with running_pipeline(config, tmp_path, env=cli_env) as pipeline:
            pipeline.wait_for("a crossing each way, the same in every output", outputs_agree, timeout=300)
            rc, _ = pipeline.signal(signal.SIGTERM)
    finally:
        sub.close()
        server.stop()
    assert rc == 0, pipeline.logs()
    entering, leaving = seen["metrics"]
    # each play of the clip is one crossing each way, each the way its person walks
    assert abs(entering - leaving) <= 1, seen
    assert seen["dwells"][0] >= 1, seen  # B left the zone (or A's track ended in it)
    rows = [r for r in read_csv_rows(out) if r["camera"] == "entrance"]  # strict, after the final flush
    assert sum(int(r["in_door"]) for r in rows) >= entering

    snapshot = cv2.imread(str(out / "snapshots" / "entrance.jpg"))
    assert snapshot is not None
    on_line = snapshot[118:123, 200:300].astype(int)
    assert (np.abs(on_line - LINE_COLOR).sum(axis=2) < 90).sum() > 50  # the counting line is drawn


def crossing(direction: str) -> tuple[str, frozenset[tuple[str, str]]]:
    labels = {("camera", "entrance"), ("line", "door"), ("direction", direction)}
    return ("crowdwatch_line_crossings_total", frozenset(labels))


DWELL_COUNT = ("crowdwatch_zone_dwell_seconds_count", frozenset({("camera", "entrance"), ("zone", "lower")}))


def csv_rows(directory: Path) -> list[dict[str, str]]:
    """The complete rows written so far (a flush may be under way: a last line without newline waits)."""
    rows: list[dict[str, str]] = []
    for path in sorted(directory.glob("counts-*.csv")):
        text = path.read_text()
        lines = text.splitlines(keepends=True)
        complete = [line for line in lines if line.endswith("\n")]
        rows += list(csv.DictReader(complete))
    return rows
