"""Changing a running site with SIGHUP: one real `crowdwatch run` (one model load) on four real RTSP
cameras, with CSV read back from disk, /metrics scraped and a real mosquitto, goes through five reloads:

1. add a camera (with a zone of its own: the CSV gets new columns) and remove one;
2. change one camera's URL, and move another camera's zone;
3. an invalid file (nothing changes, the reload metric says so, each error is logged with its key path);
4. a new ``model.weights``, then new MQTT and heatmap settings (refused: they need a restart);
5. the valid file again (no change, the metric recovers).

Cameras that no reload touches never pause: their reader never reconnects, their CSV frame indices run
on without a gap that the pipeline's own drop accounting does not explain. (A frame the model could not
take before the next one arrived is *superseded*: the reader's policy under load, counted in
``frames_dropped_total`` and the final summary; the test compares indices with that count, not rates.)

Each camera is a still picture (lossless H.264, so every frame decodes the same): its count is the same
in every row, so a camera's rows show which stream and which zone polygon produced them.
"""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support.mosquitto import BOX, BOX_PASSWORD, SUB, SUB_PASSWORD, Mosquitto, retained
from support.pipeline_harness import (
    PipelineProcess,
    read_csv_rows,
    running_pipeline,
    write_config,
    write_lossless_still_h264,
)
from support.rtsp_fixtures import RtspServer, requires_rtsp

from crowdwatch.demo import render_frames

pytestmark = [pytest.mark.rtsp, pytest.mark.slow, requires_rtsp]

SITE = "reload-site"
WIDTH, HEIGHT = 160, 128
LEFT = [[0, 0], [80, 0], [80, 128], [0, 128]]
WHOLE = [[0, 0], [160, 0], [160, 128], [0, 128]]
#: A zone's alert raised by any head in it (every picture has heads): it is raised once and, as long as
#: its zone is not changed, never again.
ALERT = {"high": 1, "low": 0}
#: Rows a camera must add before the test moves on: a check of behaviour, not of speed; the timeout is a
#: generous bound for a loaded 2-core machine.
ROWS = 3
TIMEOUT_S = 90.0
RELOAD_RE = re.compile(r"config reload(?: refused)?: .*")


def camera(camera_id: str, url: str, zones: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"id": camera_id, "url": url, "zones": zones or []}


def rows_of(out: Path, camera_id: str) -> list[dict[str, str]]:
    """A camera's rows in capture order (a reload that changes the columns starts a new file, which
    sorts before the first: ``counts-DAY.1.csv``)."""
    rows = [row for row in read_csv_rows(out) if row["camera"] == camera_id]
    return sorted(rows, key=lambda row: row["time_utc"])


def outcomes(pipeline: PipelineProcess) -> list[str]:
    """Each reload's outcome line, in order (applied, no change, or refused)."""
    return [
        line
        for line in RELOAD_RE.findall(pipeline.logs())
        if "applied" in line or "no change" in line or line.startswith("config reload refused")
    ]


def reload(pipeline: PipelineProcess, config: Path, site: dict[str, Any]) -> str:
    """Write ``site`` to the config file, send SIGHUP, wait for the reload's outcome line."""
    write_config(config, **site)
    before = len(outcomes(pipeline))
    assert pipeline.process is not None
    pipeline.process.send_signal(signal.SIGHUP)
    pipeline.wait_for("the reload's outcome", lambda: len(outcomes(pipeline)) > before, timeout=TIMEOUT_S)
    return outcomes(pipeline)[before]


def labelled_cameras(pipeline: PipelineProcess) -> set[str]:
    """Every camera label on /metrics."""
    return {value for (_, labels) in pipeline.scrape() for key, value in labels if key == "camera"}


def captured(row: dict[str, str]) -> float:
    """A row's capture time (``time_utc``) as ``time.time()`` seconds."""
    return datetime.fromisoformat(row["time_utc"].replace("Z", "+00:00")).timestamp()


def grows(pipeline: PipelineProcess, out: Path, camera_id: str, rows: int = ROWS) -> None:
    start = len(rows_of(out, camera_id))
    pipeline.wait_for(
        f"{rows} more rows of {camera_id}",
        lambda: len(rows_of(out, camera_id)) >= start + rows,
        timeout=TIMEOUT_S,
        interval=0.5,
    )


def restart_of(rows: list[dict[str, str]]) -> int | None:
    """Where a camera's frame indices start again (its reader was replaced), if they did."""
    indices = [int(row["frame"]) for row in rows]
    return next((i for i in range(1, len(indices)) if indices[i] < indices[i - 1]), None)


def assert_continuous(rows: list[dict[str, str]], final: dict[str, int]) -> None:
    """One camera's rows from one reader: indices rising, none twice, and every missing index (from 0)
    is a frame the pipeline itself counted as superseded or dropped on sink overload."""
    indices = [int(row["frame"]) for row in rows]
    assert indices == sorted(set(indices)), indices
    missing = indices[-1] + 1 - len(indices)
    assert missing == final["superseded"] + final["sink_overload"], (missing, final)


def test_sighup_adds_removes_restarts_and_retunes_cameras_without_pausing_the_others(tmp_path: Path) -> None:
    pictures = {name: render_frames(WIDTH, HEIGHT, 1, people, seed=seed)[0] for name, people, seed in [
        ("a", 20, 31), ("b", 24, 32), ("c", 8, 33), ("d", 30, 34), ("e", 16, 35),
    ]}  # fmt: skip
    mounts = {
        f"/{name}": f"file:{write_lossless_still_h264(tmp_path / f'{name}.mp4', image, seconds=300, fps=5)}"
        for name, image in pictures.items()
    }
    rtsp = RtspServer(mounts)
    broker = Mosquitto(tmp_path / "broker", {BOX: BOX_PASSWORD, SUB: SUB_PASSWORD})
    out = tmp_path / "out"
    config = tmp_path / "site.yaml"
    try:
        rtsp.start()
        broker.start()
        url = rtsp.url
        model = {"precision": "fp32", "device": "cpu", "threads": 1, "max_batch": 4, "max_wait_ms": 50}
        common: dict[str, Any] = {
            "site": SITE,
            "model": model,
            "defaults": {
                "fps": 1,
                "open_timeout_s": 3,
                "read_timeout_s": 3,
                "stale_after_s": 10,
                "reconnect": {"initial_s": 0.5, "max_s": 1},
                "smoothing": {"window_s": 0},
            },
            "mqtt": {
                "enabled": True,
                "port": broker.port,
                "username": BOX,
                "password": "${env:CW_MQTT_PASSWORD}",
                "reconnect": {"initial_s": 1, "max_s": 2},
            },
            "output": {"dir": str(out), "csv": {"flush_interval_s": 0.5}, "snapshots": {"enabled": False}},
        }
        keep = camera("keep", url("/a"), [{"id": "door", "polygon": LEFT, "alert": ALERT}])
        stay = {"id": "stay", "polygon": LEFT, "alert": ALERT}
        zoned_before = camera("zoned", url("/b"), [{"id": "area", "polygon": LEFT}, stay])
        zoned_after = camera("zoned", url("/b"), [{"id": "area", "polygon": WHOLE}, stay])
        gone = camera("gone", url("/e"))
        moved_before, moved_after = camera("moved", url("/c")), camera("moved", url("/d"))
        new = camera("new", url("/e"), [{"id": "extra", "polygon": WHOLE}])
        first = {**common, "cameras": [keep, zoned_before, gone, moved_before]}
        write_config(config, **first)
        env = {**os.environ, "CW_MQTT_PASSWORD": BOX_PASSWORD}
        with running_pipeline(config, tmp_path, env=env, ready_timeout=TIMEOUT_S) as pipeline:
            for camera_id in ("keep", "zoned", "gone", "moved"):
                grows(pipeline, out, camera_id)
            assert pipeline.value("crowdwatch_config_last_reload_successful") == 1
            started_at = pipeline.value("crowdwatch_config_last_reload_success_timestamp_seconds")
            assert started_at is not None

            # 1. Add `new` (its zone adds CSV columns) and remove `gone`.
            second = {**common, "cameras": [keep, zoned_before, moved_before, new]}
            outcome = reload(pipeline, config, second)
            assert "applied (added [new]; removed [gone])" in outcome, outcome
            grows(pipeline, out, "new")
            gone_rows = len(rows_of(out, "gone"))  # its last rows are on disk by now (flushed every 0.5 s)
            grows(pipeline, out, "keep")
            assert len(rows_of(out, "gone")) == gone_rows  # and no row came after
            cameras = labelled_cameras(pipeline)
            assert "gone" not in cameras and {"keep", "zoned", "moved", "new"} <= cameras
            assert pipeline.value("crowdwatch_camera_up", camera="new") == 1
            assert set(pipeline.health()[1]["cameras"]) == {"keep", "zoned", "moved", "new"}
            assert pipeline.value("crowdwatch_config_last_reload_successful") == 1
            assert (
                pipeline.value("crowdwatch_config_last_reload_success_timestamp_seconds") or 0
            ) > started_at
            on_broker = retained(broker.port, SUB, SUB_PASSWORD, f"crowdwatch/{SITE}/#")
            assert on_broker[f"crowdwatch/{SITE}/gone/status"] == b"offline"
            assert f"crowdwatch/{SITE}/gone/count" not in on_broker  # cleared
            assert on_broker[f"crowdwatch/{SITE}/new/status"] == b"online"
            assert f"crowdwatch/{SITE}/new/extra/count" in on_broker
            assert on_broker[f"crowdwatch/{SITE}/keep/status"] == b"online"

            # 2. `moved` reads another stream (its reader restarts, alone); `zoned`'s zone `area` moves.
            zoned_last = len(rows_of(out, "zoned"))  # every one of them made before the reload
            third = {**common, "cameras": [keep, zoned_after, moved_after, new]}
            outcome = reload(pipeline, config, third)
            applied_at = time.time()  # a frame captured after this is counted under the new zones
            assert "applied (restarted [moved]; retuned [zoned])" in outcome, outcome
            pipeline.wait_for(
                "moved counting the new stream",
                lambda: restart_of(rows_of(out, "moved")) is not None,
                timeout=TIMEOUT_S,
                interval=0.5,
            )
            grows(pipeline, out, "moved")
            grows(pipeline, out, "zoned")

            # 3. An invalid file: every error with its key path; nothing changes.
            broken = {
                **common,
                "cameras": [{**keep, "fps": 0}, {**zoned_after, "colour": "red"}, moved_after],
            }
            outcome = reload(pipeline, config, broken)
            assert "is invalid (2 error(s)); still running the previous config" in outcome, outcome
            logs = pipeline.logs()
            assert re.search(r"config reload: .*site\.yaml: cameras\[0\]\.fps: ", logs), logs[-3000:]
            assert re.search(r"config reload: .*site\.yaml: cameras\[1\]\.colour: ", logs), logs[-3000:]
            assert pipeline.value("crowdwatch_config_last_reload_successful") == 0
            grows(pipeline, out, "new")  # `new`, missing from the broken file, still runs

            # 4. Another model: refused, needs a restart.
            weights = {**third, "model": {**model, "weights": str(tmp_path / "other.pt")}}
            outcome = reload(pipeline, config, weights)
            assert "refused: model.weights changed, which needs a restart" in outcome, outcome
            assert "still running the previous config, nothing applied" in outcome
            assert pipeline.value("crowdwatch_config_last_reload_successful") == 0

            # ... and so do the MQTT connection and the sinks' settings (a heatmap window spans reloads).
            sinks = {
                **third,
                "mqtt": {**common["mqtt"], "keepalive_s": 10},
                "output": {**common["output"], "heatmaps": {"enabled": True}},
            }
            outcome = reload(pipeline, config, sinks)
            assert "refused: output.heatmaps.enabled, mqtt.keepalive_s changed" in outcome, outcome
            assert not (out / "heatmaps").exists()

            # 5. The running config again: nothing to do, and the metric says the file is what runs.
            outcome = reload(pipeline, config, third)
            assert outcome.endswith("no change"), outcome
            assert pipeline.value("crowdwatch_config_last_reload_successful") == 1
            grows(pipeline, out, "keep")
            assert pipeline.value("crowdwatch_reconnects_total", camera="keep") == 0
            assert pipeline.value("crowdwatch_reconnects_total", camera="zoned") == 0
            rc, _ = pipeline.signal(signal.SIGTERM)
            assert rc == 0, pipeline.logs()[-3000:]
    finally:
        broker.stop()
        rtsp.stop()

    logs = pipeline.logs()
    final = pipeline.final_counts()
    assert "Traceback" not in logs and BOX_PASSWORD not in logs
    # The untouched cameras: one reader each for the whole run, no gap the pipeline did not count,
    # never down; their zones' alerts were raised once and kept their state through every reload.
    for camera_id in ("keep", "zoned", "new"):
        assert_continuous(rows_of(out, camera_id), final[camera_id])
        assert logs.count(f"{camera_id}: camera down") == 1  # at the final stop only
        assert f"{camera_id}: camera down: reader stopped" in logs
    assert len(re.findall(r"keep: zone door alert raised", logs)) == 1
    assert len(re.findall(r"zoned: zone stay alert raised", logs)) == 1
    # `zoned`: the same camera count throughout; zone `area` counted the left half, then everything.
    zoned = rows_of(out, "zoned")
    counts = {int(row["count"]) for row in zoned}
    assert len(counts) == 1
    before = zoned[:zoned_last]
    after = [row for row in zoned if captured(row) > applied_at]
    assert len(after) >= ROWS
    assert {int(row["zone_area"]) for row in after} == counts
    assert max(int(row["zone_area"]) for row in before) < min(counts)
    # `moved`: two readers (frame 0 twice); the new stream's picture has another count.
    moved = rows_of(out, "moved")
    restart = restart_of(moved)
    assert restart is not None
    assert len({int(row["count"]) for row in moved[:restart]}) == 1
    assert len({int(row["count"]) for row in moved[restart:]}) == 1
    assert moved[0]["count"] != moved[restart]["count"]
    assert f"moved: camera up ({url('/d')})" in logs
    # `gone` stopped at the first reload; `new` started there, with its zone's column.
    assert {row["zone_extra"] for row in rows_of(out, "new")} != {""}
    assert "gone" not in final
