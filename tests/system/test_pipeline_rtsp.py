"""`crowdwatch run` on three cameras served by a real RTSP server (GStreamer), one server per camera so
that each camera's trouble can be made on its own: killed, restarted, frozen (SIGSTOP).

Each camera streams a lossless H.264 clip of one still image (passed through unchanged), so every
frame the pipeline decodes is bit-identical to frame 0 decoded from the file here: its count must
equal what `crowdwatch count` says on that frame. Checked through the real outputs: /metrics scraped
over HTTP, CSV read back, logs. One camera's URL carries a password (from the environment); it must
appear in no output.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import cv2
import pytest
from support.pipeline_harness import (
    PipelineProcess,
    count_cli,
    decode_first_frame,
    read_csv_rows,
    running_pipeline,
    write_config,
    write_lossless_still_h264,
)
from support.rtsp_fixtures import RtspServer, requires_rtsp

from crowdwatch.demo import render_frames

pytestmark = [requires_rtsp, pytest.mark.rtsp, pytest.mark.slow]

PASSWORD = "Zq7-s3cret-Pa55word"
USERINFO = "viewer:${env:CAM_PASSWORD}"  # resolved from the environment when the config loads
READ_TIMEOUT_S = 1.0
FPS = 2.0
#: Frames each healthy camera must process while another is down, and the longest wait for them: at
#: FPS, 3 frames take 1.5 s on an idle machine; 30 s allows a 20x slowdown (a loaded 2-core machine ran
#: this pipeline at half its rate; no rate is asserted, only that frames keep coming).
FRAMES_DURING_OUTAGE = 3
OUTAGE_WAIT_S = 30.0
#: Scrape interval plus scheduling noise on a shared 2-core machine.
SLACK_S = 1.5


def processed(pipeline: PipelineProcess, camera: str) -> float:
    return pipeline.value("crowdwatch_frames_processed_total", camera=camera) or 0.0


def keep_processing(pipeline: PipelineProcess, cameras: list[str], frames: int, timeout: float) -> None:
    """Wait until each of ``cameras`` has processed ``frames`` more frames. A check of behaviour (frames
    still flow), not of speed: the timeout is a generous bound for a loaded machine, not a rate."""
    start = {camera: processed(pipeline, camera) for camera in cameras}
    pipeline.wait_for(
        f"{frames} more frames from each of {cameras}",
        lambda: all(processed(pipeline, c) >= start[c] + frames for c in cameras),
        timeout=timeout,
    )


def up(pipeline: PipelineProcess, camera: str) -> bool:
    return pipeline.value("crowdwatch_camera_up", camera=camera) == 1


@requires_rtsp
def test_three_rtsp_cameras_survive_kill_restart_and_freeze(tmp_path: Path) -> None:
    stills = {}
    for i in (1, 2, 3):
        image = render_frames(160, 128, 1, 25, seed=10 + i)[0]
        clip = write_lossless_still_h264(tmp_path / f"cam{i}.mp4", image)
        stills[f"cam{i}"] = clip
        cv2.imwrite(str(tmp_path / f"cam{i}.png"), decode_first_frame(clip))
    counted = count_cli([tmp_path / f"{camera}.png" for camera in stills])
    expected = {camera: item["count"] for camera, item in counted.items()}
    servers = {camera: RtspServer({"/live": f"file:{clip}"}) for camera, clip in stills.items()}
    try:
        for server in servers.values():
            server.start()
        cameras = [
            {"id": camera, "url": server.url("/live", USERINFO if camera == "cam1" else "")}
            for camera, server in servers.items()
        ]
        defaults = {
            "fps": FPS,
            "open_timeout_s": 2.0,
            "read_timeout_s": READ_TIMEOUT_S,
            "stale_after_s": 5.0,
            "reconnect": {"initial_s": 0.5, "max_s": 1.0, "jitter": 0.1},
        }
        config = write_config(tmp_path / "site.yaml", cameras, defaults=defaults)
        assert PASSWORD not in config.read_text()
        env = {"CAM_PASSWORD": PASSWORD}
        with running_pipeline(config, tmp_path, env={**os.environ, **env}) as pipeline:
            # Rows and gauges for each camera.
            for camera in servers:
                pipeline.wait_for(
                    f"{camera} up and processing",
                    lambda c=camera: up(pipeline, c) and processed(pipeline, c) >= 2,
                    timeout=60,
                )
            assert pipeline.health()[0] == 200
            for camera in servers:
                assert pipeline.value("crowdwatch_people", camera=camera) == expected[camera]

            # Killed: cam1 goes down within the read timeout; the others keep processing frames meanwhile
            # (several each, while cam1 stays down: its reconnect attempts do not stall them).
            servers["cam1"].kill()
            pipeline.wait_for("cam1 down", lambda: not up(pipeline, "cam1"), timeout=READ_TIMEOUT_S + SLACK_S)
            status, health = pipeline.health()
            assert status == 503 and "cam1" in health["reason"]
            keep_processing(pipeline, ["cam2", "cam3"], FRAMES_DURING_OUTAGE, timeout=OUTAGE_WAIT_S)
            assert not up(pipeline, "cam1")

            # Back: the reader reconnects and cam1 is up again, processing.
            reconnects = pipeline.value("crowdwatch_reconnects_total", camera="cam1") or 0
            assert reconnects >= 1
            servers["cam1"].start()
            pipeline.wait_for("cam1 up again", lambda: up(pipeline, "cam1"), timeout=10)
            again = processed(pipeline, "cam1")
            pipeline.wait_for(
                "cam1 processing again", lambda: processed(pipeline, "cam1") > again, timeout=10
            )

            # Frozen (SIGSTOP: the socket stays open, nothing arrives): down after one read timeout.
            servers["cam2"].freeze()
            pipeline.wait_for(
                "cam2 down", lambda: not up(pipeline, "cam2"), timeout=2 * READ_TIMEOUT_S + SLACK_S
            )
            assert up(pipeline, "cam3") and up(pipeline, "cam1")
            servers["cam2"].thaw()

            rc, seconds = pipeline.signal(signal.SIGTERM)
            assert rc == 0, pipeline.logs()[-3000:]
            assert seconds < 10
    finally:
        for server in servers.values():
            server.stop()

    rows = read_csv_rows(tmp_path / "out")
    final = pipeline.final_counts()
    for camera in servers:
        mine = [row for row in rows if row["camera"] == camera]
        assert len(mine) == final[camera]["processed"] - final[camera]["sink_overload"]
        assert {int(row["count"]) for row in mine} == {expected[camera]}
    # The password is in no output: logs, every /metrics scrape, CSV, snapshot names.
    outputs = [pipeline.logs(), *pipeline.scraped]
    outputs += [path.read_text(errors="replace") for path in (tmp_path / "out").glob("*.csv")]
    outputs += [str(path) for path in (tmp_path / "out").rglob("*")]
    assert pipeline.scraped and rows
    for text in outputs:
        assert PASSWORD not in text
    assert "viewer:" not in pipeline.logs()  # userinfo masked in URLs, not only the password
