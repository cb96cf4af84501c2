"""`crowdwatch run` end to end on file cameras, as a subprocess, checked through its real outputs.

The model runs on random weights (seed 0, the same in `crowdwatch run` and `crowdwatch count`) in
fp32: the counts are meaningless as people but are a deterministic function of the pixels and the
padding, which is what these tests compare.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.pipeline_harness import (
    REPO,
    count_cli,
    decode_first_frame,
    read_csv_rows,
    running_pipeline,
    write_config,
    write_still_clip,
)
from support.ports import free_port

from crowdwatch.demo import make_demo_clip, render_frames
from crowdwatch.zones import Zone

LEFT_HALF = [[0, 0], [80, 0], [80, 128], [0, 128]]


def test_counts_match_count_cli_per_frame_size_and_sigterm_leaves_complete_csv(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    # Two cameras share a size (they batch together), one has another size (its own batches).
    stills = {
        "cam-a": render_frames(160, 128, 1, 25, seed=1)[0],
        "cam-b": render_frames(160, 128, 1, 25, seed=2)[0],
        "cam-c": render_frames(192, 128, 1, 25, seed=3)[0],
    }
    cameras = []
    for camera, image in stills.items():
        clip = write_still_clip(tmp_path / f"{camera}.avi", image)
        frame = decode_first_frame(clip)  # the exact pixels the pipeline will see
        cv2.imwrite(str(tmp_path / f"{camera}.png"), frame)  # lossless
        cameras.append({"id": camera, "url": str(clip), "fps": 4, "loop": True})
    cameras[0]["zones"] = [{"id": "left", "polygon": LEFT_HALF, "alert": {"high": 1, "low": 0}}]
    # A camera that never comes up must not stop the others.
    cameras.append(
        {
            "id": "dead",
            "url": f"rtsp://127.0.0.1:{free_port()}/none",
            "open_timeout_s": 1,
            "reconnect": {"initial_s": 0.5, "max_s": 1},
        }
    )
    # Nor must a USB camera (device index) that is not plugged in: this machine has no /dev/video9.
    assert not Path("/dev/video9").exists()
    cameras.append({"id": "usb", "url": 9, "reconnect": {"initial_s": 0.5, "max_s": 1}})
    output = {"dir": str(tmp_path / "out"), "snapshots": {"interval_s": 1.0}, "video": {"enabled": True}}
    config = write_config(tmp_path / "site.yaml", cameras, output=output)
    expected = count_cli([tmp_path / f"{camera}.png" for camera in stills], cli_env)

    with running_pipeline(config, tmp_path) as pipeline:
        for camera in stills:
            pipeline.wait_for(
                f"{camera} processed",
                lambda c=camera: (pipeline.value("crowdwatch_frames_processed_total", camera=c) or 0) >= 4,
                timeout=60,
            )
        samples = pipeline.scrape()
        for camera in stills:
            people = samples[("crowdwatch_people", frozenset({("camera", camera)}))]
            assert people == expected[camera]["count"]
            assert samples[("crowdwatch_camera_up", frozenset({("camera", camera)}))] == 1
        assert samples[("crowdwatch_camera_up", frozenset({("camera", "dead")}))] == 0
        assert samples[("crowdwatch_camera_up", frozenset({("camera", "usb")}))] == 0
        status, health = pipeline.health()
        assert status == 503 and "dead" in health["reason"] and "cam-a" not in health["reason"]
        assert "usb" in health["reason"]
        rc, seconds = pipeline.signal(signal.SIGTERM)
    assert rc == 0, pipeline.logs()
    assert seconds < 10

    rows = read_csv_rows(tmp_path / "out")
    final = pipeline.final_counts()
    points_a = np.array(expected["cam-a"]["points"], np.float32).reshape(-1, 2)
    left_a = int(Zone("left", np.array(LEFT_HALF)).contains(points_a).sum())
    for camera in stills:
        mine = [row for row in rows if row["camera"] == camera]
        # Complete: every processed frame has its row.
        assert len(mine) == final[camera]["processed"] - final[camera]["sink_overload"] >= 4
        assert {int(row["count"]) for row in mine} == {expected[camera]["count"]}
        assert [int(row["frame"]) for row in mine] == sorted(int(row["frame"]) for row in mine)
    assert {row["zone_left"] for row in rows if row["camera"] == "cam-a"} == {str(left_a)}
    assert {row["alert_left"] for row in rows if row["camera"] == "cam-a"} == {"1" if left_a >= 1 else "0"}
    assert {row["zone_left"] for row in rows if row["camera"] != "cam-a"} == {""}
    for camera, image in stills.items():
        snapshot = cv2.imread(str(tmp_path / "out" / "snapshots" / f"{camera}.jpg"))
        assert snapshot is not None and snapshot.shape == image.shape
        (video,) = (tmp_path / "out" / "video").glob(f"{camera}-*.mp4")
        capture = cv2.VideoCapture(str(video))
        ok, first = capture.read()
        rate = capture.get(cv2.CAP_PROP_FPS)
        capture.release()
        assert ok and first.shape == image.shape  # closed properly on SIGTERM: decodable
        assert rate == pytest.approx(4)  # plays at the camera's sampling rate (its fps)
    assert "Traceback" not in pipeline.logs()
    assert any("usb" in line and "could not open" in line for line in pipeline.logs().splitlines())


def test_kill_9_leaves_parseable_csv_missing_at_most_about_one_second(tmp_path: Path) -> None:
    clip = write_still_clip(tmp_path / "still.avi", render_frames(160, 128, 1, 10, seed=4)[0])
    cameras = [{"id": f"cam{i}", "url": str(clip), "fps": 4, "loop": True} for i in range(2)]
    config = write_config(tmp_path / "site.yaml", cameras)
    with running_pipeline(config, tmp_path) as pipeline:

        def processed() -> float:
            return sum(
                pipeline.value("crowdwatch_frames_processed_total", camera=f"cam{i}") or 0 for i in range(2)
            )

        pipeline.wait_for("20 frames processed", lambda: processed() >= 20, timeout=60)
        started, before = time.monotonic(), processed()
        time.sleep(2.0)
        at_kill = processed()
        rate = (at_kill - before) / (time.monotonic() - started)
        rc, _ = pipeline.signal(signal.SIGKILL)
    assert rc == -signal.SIGKILL
    rows = read_csv_rows(tmp_path / "out")  # parseable, no half row, no repeated header
    lost = at_kill - len(rows)
    # The CSV is fsynced every second: lost rows are those of the last second (+ one batch in flight).
    assert -4 <= lost <= rate * 1.25 + 4, f"lost {lost} rows at {rate:.1f} rows/s"

    # A restart appends to the same file under the one header.
    with running_pipeline(config, tmp_path, args=("--duration", "4")) as again:
        assert again.process is not None and again.process.wait(timeout=60) == 0, again.logs()
    assert len(list((tmp_path / "out").glob("counts-*.csv"))) == 1
    after = read_csv_rows(tmp_path / "out")  # still one header, no half row
    assert after[: len(rows)] == rows and len(after) > len(rows)


def test_slow_model_keeps_latency_bounded_and_counts_drops(tmp_path: Path) -> None:
    # Honest slow model: 320x240 frames take ~0.3 s each on one CPU thread in fp32, while the camera
    # delivers 15 frames/s and asks for every one of them (fps: null).
    clip = make_demo_clip(tmp_path / "busy.mp4", width=320, height=240, seconds=4, fps=15, people=20)
    camera = {"id": "busy", "url": str(clip), "fps": None, "loop": True}
    output = {"dir": str(tmp_path / "out"), "snapshots": {"enabled": False}}
    config = write_config(tmp_path / "site.yaml", [camera], output=output)
    with running_pipeline(config, tmp_path) as pipeline:
        pipeline.wait_for(
            "30 frames processed",
            lambda: (pipeline.value("crowdwatch_frames_processed_total", camera="busy") or 0) >= 30,
            timeout=90,
            interval=0.5,
        )
        samples = pipeline.scrape()
        rc, _ = pipeline.signal(signal.SIGTERM)
    assert rc == 0, pipeline.logs()
    dropped = samples[
        ("crowdwatch_frames_dropped_total", frozenset({("camera", "busy"), ("reason", "superseded")}))
    ]
    read = samples[("crowdwatch_frames_read_total", frozenset({("camera", "busy")}))]
    processed = samples[("crowdwatch_frames_processed_total", frozenset({("camera", "busy")}))]
    assert dropped > processed  # the model is slower than the camera: most frames are dropped, counted
    assert read - dropped - processed <= 2  # every frame read is either processed, dropped or in flight
    rows = read_csv_rows(tmp_path / "out")[3:]  # skip warm-up
    latencies = [float(row["latency_s"]) for row in rows]
    # When each frame's result was ready: its capture time plus its latency. The gaps between them are
    # the model's own pace, measured under whatever load the machine has at that moment.
    done = [
        datetime.fromisoformat(row["time_utc"]).timestamp() + lat
        for row, lat in zip(rows, latencies, strict=True)
    ]
    gaps = np.diff(done)
    # Bounded: a frame waits at most for the batch in flight, then for its own, so its latency is about two
    # of the gaps around it (x1.5 and 0.25 s for jitter and the sink). A queue would instead add one gap
    # per frame processed: by the 30th frame, latency would be ~25 gaps. Relative to the measured pace,
    # this holds on a fast idle CPU and on a slow loaded one alike.
    for i in range(2, len(latencies)):
        bound = 1.5 * (gaps[i - 1] + gaps[i - 2]) + 0.25
        assert latencies[i] <= bound, (i, latencies[i], bound, latencies)
    third = len(latencies) // 3
    first, last = statistics.mean(latencies[:third]), statistics.mean(latencies[-third:])
    pace = float(np.median(gaps))
    assert last < first + 3 * pace, (first, last, pace)  # no growth beyond a few frames' worth


@pytest.mark.parametrize("argv", [["--duration", "0"], []])
def test_bad_usage_exits_2(argv: list[str], tmp_path: Path, cli_env: dict[str, str]) -> None:
    config = write_config(tmp_path / "site.yaml", [{"id": "a", "url": str(tmp_path / "a.avi")}])
    args = [str(config), *argv] if argv else []
    out = subprocess.run(
        [sys.executable, "-m", "crowdwatch", "run", *args],
        cwd=REPO,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr


def test_invalid_config_exits_2_naming_the_key(tmp_path: Path, cli_env: dict[str, str]) -> None:
    config = write_config(
        tmp_path / "site.yaml",
        [{"id": "a", "url": "rtsp://u:hunter22@127.0.0.1:1/x"}],
        model={"max_batch": 0},
    )
    out = subprocess.run(
        [sys.executable, "-m", "crowdwatch", "run", str(config)],
        cwd=REPO,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "model.max_batch" in out.stderr and "Traceback" not in out.stderr
    assert "hunter22" not in out.stderr + out.stdout
