"""Why a camera cannot be (re)opened is in our log, each attempt, and FFmpeg/OpenCV print nothing raw.

Real GStreamer RTSP server: a camera on a path the server does not have (404) and a camera whose server
is killed (Connection refused). FFmpeg writes its own messages straight to file descriptor 2, so the
check reads the process's stderr at the descriptor level (``capfd``), not Python's ``sys.stderr``.
"""

from __future__ import annotations

import logging
import re

import pytest
from support.capture_fakes import RecordingEvents, camera, run_reader, wait_for
from support.rtsp_fixtures import RtspServer

from crowdwatch.capture.reader import CameraReader

RAW_LIBRARY_LINE = re.compile(r"^\[(rtsp|tcp|h264|NULL) @ 0x|\[ ?(WARN|ERROR|INFO):\d", re.M)
FAST_RETRY = {"initial_s": 0.2, "max_s": 0.3, "jitter": 0.0}


@pytest.mark.rtsp
def test_each_failed_reconnect_logs_its_reason_and_the_libraries_stay_quiet(
    readers: list[CameraReader],
    rtsp_server: RtspServer,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO, logger="crowdwatch.capture")
    wrong = camera(rtsp_server.url("/nope"), open_timeout_s=2.0, reconnect=FAST_RETRY)
    run_reader(readers, wrong.model_copy(update={"id": "wrong"}))
    good = run_reader(readers, camera(rtsp_server.url("/live"), read_timeout_s=1.0, reconnect=FAST_RETRY))
    wait_for(lambda: good.up, timeout=10)

    def reasons(camera_id: str, text: str) -> int:
        return sum(
            1
            for r in caplog.records
            if r.getMessage().startswith(f"{camera_id}: ") and text in r.getMessage()
        )

    wait_for(lambda: reasons("wrong", "404 Not Found") >= 3, timeout=15)  # every attempt, not the first only
    rtsp_server.kill()
    wait_for(lambda: reasons("cam", "Connection refused") >= 3, timeout=15)
    err = capfd.readouterr().err
    assert not RAW_LIBRARY_LINE.search(err), err[-2000:]


@pytest.mark.rtsp
def test_a_camera_whose_frames_are_over_max_pixels_is_refused_at_open(
    readers: list[CameraReader], rtsp_server: RtspServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="crowdwatch.capture")
    events = RecordingEvents()
    big = camera(rtsp_server.url("/live"), max_pixels=320 * 240 - 1, reconnect=FAST_RETRY)
    reader = run_reader(readers, big, events=events)
    wait_for(
        lambda: "frames of 320x240 = 76,800 pixels are over max_pixels (76,799)" in caplog.text, timeout=10
    )
    assert not reader.up and events.counts["read"] == 0


@pytest.mark.rtsp
def test_the_first_failed_reconnect_after_a_drop_is_a_warning(
    readers: list[CameraReader], rtsp_server: RtspServer, caplog: pytest.LogCaptureFixture
) -> None:
    # It was INFO: the dropped session counted as the streak's first failure, the failed open as its second.
    caplog.set_level(logging.INFO, logger="crowdwatch.capture")
    good = run_reader(readers, camera(rtsp_server.url("/live"), read_timeout_s=1.0, reconnect=FAST_RETRY))
    wait_for(lambda: good.up, timeout=10)
    rtsp_server.kill()

    def refused() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "Connection refused" in r.getMessage()]

    wait_for(lambda: len(refused()) >= 3, timeout=15)
    levels = [logging.getLevelName(r.levelno) for r in refused()]
    assert levels[:3] == ["WARNING", "INFO", "INFO"], levels
