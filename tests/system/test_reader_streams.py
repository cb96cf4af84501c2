"""Camera readers on real media: H.264 files made by ffmpeg, and a real RTSP server (GStreamer)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from support.capture_fakes import RecordingEvents, camera, run_reader, wait_for
from support.rtsp_fixtures import RtspServer

from crowdwatch.capture.base import Capture
from crowdwatch.capture.opencv import open_capture
from crowdwatch.capture.reader import CameraReader
from crowdwatch.config import CameraConfig

PASSWORD = "hunter2-Secret"


def test_file_is_paced_at_its_frame_rate_and_ends(
    readers: list[CameraReader], tmp_path: Path, clip_factory: Callable[..., Path]
) -> None:
    clip = clip_factory(tmp_path / "c.mp4", seconds=1, fps=10)
    events = RecordingEvents()
    reader = run_reader(readers, camera(str(clip)), events=events)
    started = time.monotonic()
    wait_for(lambda: reader.ended, timeout=5)
    assert time.monotonic() - started >= 0.8  # 10 frames at 10 fps: paced like a live camera
    assert events.counts["read"] == 10 and not reader.up


def test_file_loops(readers: list[CameraReader], tmp_path: Path, clip_factory: Callable[..., Path]) -> None:
    clip = clip_factory(tmp_path / "c.mp4", seconds=0.5, fps=20)
    events = RecordingEvents()
    reader = run_reader(readers, camera(str(clip), loop=True), events=events)
    wait_for(lambda: events.counts["read"] >= 25, timeout=5)  # 10 frames per pass
    assert not reader.ended and reader.up
    assert events.counts["reconnect"] == 0  # looping is not a reconnect


@pytest.mark.rtsp
def test_rtsp_frames_arrive_with_wall_clock_timestamps(
    readers: list[CameraReader], rtsp_server: RtspServer
) -> None:
    events = RecordingEvents()
    wake = threading.Event()
    reader = run_reader(readers, camera(rtsp_server.url("/live")), events=events, on_frame=wake)
    assert wake.wait(5)
    frame = reader.take()
    assert frame is not None and frame.image.shape == (240, 320, 3)
    assert abs(frame.captured_at - time.time()) < 1.0
    assert reader.up and reader.state().last_frame_age_s is not None
    assert [up for _, up in events.up_changes] == [False, True]


@pytest.mark.rtsp
def test_rtsp_server_killed_then_back_on_the_same_port(
    readers: list[CameraReader], rtsp_server: RtspServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    events = RecordingEvents()
    cam = camera(
        rtsp_server.url("/live", userinfo=f"admin:{PASSWORD}"),
        read_timeout_s=1.0,
        reconnect={"initial_s": 0.2, "max_s": 0.8, "jitter": 0.2},
    )
    reader = run_reader(readers, cam, events=events)
    wait_for(lambda: reader.up, timeout=5)
    rtsp_server.kill()
    assert wait_for(lambda: not reader.up, timeout=3) < 2 * cam.read_timeout_s
    time.sleep(1.0)  # a few failed attempts, spaced by the backoff
    failed_attempts = events.counts["reconnect"]
    assert 1 <= failed_attempts <= 4
    rtsp_server.start()
    wait_for(lambda: reader.up, timeout=5)
    assert events.counts["reconnect"] > failed_attempts
    assert "camera down" in caplog.text and PASSWORD not in caplog.text
    assert PASSWORD not in repr(cam) and PASSWORD not in str(cam.model_dump())


@pytest.mark.rtsp
def test_rtsp_server_frozen_is_detected_within_twice_the_read_timeout(
    readers: list[CameraReader], rtsp_server: RtspServer
) -> None:
    cam = camera(rtsp_server.url("/live"), read_timeout_s=1.0, stale_after_s=10.0)
    reader = run_reader(readers, cam)
    wait_for(lambda: reader.up, timeout=5)
    rtsp_server.freeze()
    try:
        assert wait_for(lambda: not reader.up, timeout=4) <= 2 * cam.read_timeout_s + 0.7
    finally:
        rtsp_server.thaw()
        rtsp_server.stop()


@pytest.mark.rtsp
def test_a_host_that_never_answers_does_not_delay_another_camera(
    readers: list[CameraReader], rtsp_server: RtspServer
) -> None:
    with socket.socket() as silent:  # accepts TCP connections (backlog) but never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        dead = camera(
            f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x",
            open_timeout_s=3.0,
            read_timeout_s=3.0,
            reconnect={"initial_s": 0.1, "max_s": 0.1, "jitter": 0.0},
        )
        dead_reader = run_reader(readers, dead.model_copy(update={"id": "dead"}))
        time.sleep(0.2)  # the dead camera is now inside its 3 s open attempt
        good_events = RecordingEvents()
        good_reader = run_reader(readers, camera(rtsp_server.url("/live"), fps=None), events=good_events)
        assert wait_for(lambda: good_reader.up, timeout=2.5) < 2.0
        counted = good_events.counts["read"]
        time.sleep(2.0)
        assert good_events.counts["read"] - counted >= 15  # ~10 fps while the other camera keeps failing
        assert not dead_reader.up


class CountingCapture:
    """The real OpenCV capture, counting its successful grabs (what the reader got from FFmpeg)."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.nominal_fps = capture.nominal_fps
        self.grabs = 0

    def grab(self) -> bool:
        ok = self.capture.grab()
        self.grabs += ok
        return ok

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        return self.capture.retrieve()

    def release(self) -> None:
        self.capture.release()


@pytest.mark.rtsp
def test_every_frame_of_a_healthy_live_stream_is_read(
    readers: list[CameraReader], rtsp_server: RtspServer
) -> None:
    # FFmpeg's RTSP client restarts the stream's timestamps ~0.2 s into every session (at the first RTCP
    # report: 0, 100, 200, then 0 ms again); a rule that dropped frames whose timestamp did not advance
    # ("replayed") dropped those new frames, every session.
    sessions: list[CountingCapture] = []

    def counting(cam: CameraConfig, stop: threading.Event) -> Capture:
        sessions.append(CountingCapture(open_capture(cam, stop)))
        return sessions[-1]

    events = RecordingEvents()
    reader = run_reader(
        readers, camera(rtsp_server.url("/live"), read_timeout_s=3.0), events=events, capture_factory=counting
    )
    wait_for(lambda: events.counts["read"] >= 20, timeout=20)  # 2 s of a 10 fps stream
    reader.stop()
    assert len(sessions) == 1 and sessions[0].grabs >= 20
    # no test takes frames from the slot, so each frame but the last is superseded: that is all
    dropped = {key for key in events.counts if key.startswith("dropped:")} - {"dropped:superseded"}
    assert events.counts["read"] == sessions[0].grabs and not dropped, (sessions[0].grabs, events.counts)
