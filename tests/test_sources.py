"""Camera readers: latest-frame slot, sampling, backoff, watchdog, files, and a real RTSP server."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rtsp_fixtures import (  # noqa: F401 - fixtures clip_factory, rtsp_clip, rtsp_server (skip without gst/ffmpeg)
    RtspServer,
    fixture_clip_factory,
    fixture_rtsp_clip,
    fixture_rtsp_server,
)

from crowdwatch.config import CameraConfig, ReconnectSettings
from crowdwatch.frames import Frame
from crowdwatch.sources import (
    OPEN_LOCK,
    CameraReader,
    SourceConnectionError,
    _host_port,
    backoff_delay,
    open_capture,
    stop_readers,
)

PASSWORD = "hunter2-Secret"


class RecordingEvents:
    """ReaderEvents that remember everything, thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.up_changes: list[tuple[float, bool]] = []

    def frame_read(self, camera: str) -> None:
        with self.lock:
            self.counts["read"] += 1

    def frame_dropped(self, camera: str, reason: str, n: int = 1) -> None:
        with self.lock:
            self.counts[f"dropped:{reason}"] += n

    def reconnect(self, camera: str) -> None:
        with self.lock:
            self.counts["reconnect"] += 1

    def camera_up(self, camera: str, up: bool) -> None:
        with self.lock:
            self.up_changes.append((time.monotonic(), up))

    def frame_captured(self, camera: str, captured_at: float) -> None:
        with self.lock:
            self.counts["captured"] += 1


class FakeCapture:
    """A camera yielding numbered synthetic frames at ``interval_s``; after ``frames`` it fails or hangs."""

    def __init__(
        self,
        frames: int = 10**9,
        interval_s: float = 0.0,
        hang: threading.Event | None = None,
        fps: float = 0.0,
    ) -> None:
        self.left = frames
        self.interval_s = interval_s
        self.hang = hang
        self.fps = fps
        self.count = 0
        self.released = False

    def grab(self) -> bool:
        if self.left <= 0:
            if self.hang is not None:
                self.hang.wait(10)
            return False
        time.sleep(self.interval_s)
        self.left -= 1
        self.count += 1
        return True

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        image = np.zeros((24, 32, 3), np.uint8)
        image[0, 0, 0] = self.count % 256
        return True, image

    def release(self) -> None:
        self.released = True


def camera(url: Any = 0, **overrides: Any) -> CameraConfig:
    settings: dict[str, Any] = {
        "id": "cam",
        "url": url,
        "fps": None,
        "open_timeout_s": 1.0,
        "read_timeout_s": 1.0,
        "stale_after_s": 5.0,
        "reconnect": {"initial_s": 0.2, "max_s": 1.0, "jitter": 0.1},
    }
    settings.update(overrides)
    return CameraConfig.model_validate(settings)


def factory_of(*captures: FakeCapture | Exception) -> Callable[..., FakeCapture]:
    """A capture factory returning (or raising) the given items in order, then failing."""
    items = list(captures)

    def factory(cam: CameraConfig, stop: threading.Event) -> FakeCapture:
        item = items.pop(0) if items else SourceConnectionError(cam.id, "no more fakes")
        if isinstance(item, Exception):
            raise item
        return item

    return factory


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> float:
    """Seconds until ``predicate()`` held; fails the test after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start


@pytest.fixture
def readers() -> Iterator[list[CameraReader]]:
    started: list[CameraReader] = []
    yield started
    for reader in started:
        reader.stop(timeout=5)


def run_reader(readers: list[CameraReader], cam: CameraConfig, **kwargs: Any) -> CameraReader:
    reader = CameraReader(cam, **kwargs)
    readers.append(reader)
    reader.start()
    return reader


# --------------------------------------------------------------------------- unit (fake captures)


def test_backoff_doubles_caps_and_jitters_down() -> None:
    settings = ReconnectSettings(initial_s=0.5, max_s=4.0, jitter=0.25)
    assert [backoff_delay(n, settings, rand=lambda: 0.0) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]
    assert backoff_delay(3, settings, rand=lambda: 1.0) == pytest.approx(1.5)
    assert all(0.75 * 4 <= backoff_delay(50, settings) <= 4.0 for _ in range(100))


def test_latest_slot_counts_superseded_frames_with_a_slow_consumer(readers: list[CameraReader]) -> None:
    events = RecordingEvents()
    wake = threading.Event()
    reader = run_reader(
        readers,
        camera(),
        events=events,
        on_frame=wake,
        capture_factory=factory_of(FakeCapture(frames=60, interval_s=0.005)),
    )
    taken: list[Frame] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        wake.wait(0.2)
        wake.clear()
        done = reader.frames_read == 60  # read before take(): then an empty slot means nothing is left
        frame = reader.take()
        if frame is None and done:
            break
        if frame is not None:
            taken.append(frame)
            time.sleep(0.03)  # a model slower than the camera
    assert reader.frames_read == 60
    assert reader.superseded > 0
    assert len(taken) + reader.superseded == 60  # every frame was either taken or counted as dropped
    assert events.counts["dropped:superseded"] == reader.superseded
    assert events.counts["read"] == 60
    indices = [f.index for f in taken]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert all(f.camera == "cam" and f.image.shape == (24, 32, 3) for f in taken)


def test_sampling_rate_skips_at_read_time_without_counting_drops(readers: list[CameraReader]) -> None:
    events = RecordingEvents()
    fake = FakeCapture(interval_s=0.01)  # ~100 frames/s
    reader = run_reader(readers, camera(fps=10), events=events, capture_factory=factory_of(fake))
    time.sleep(1.0)
    reader.stop()
    assert 7 <= reader.frames_read <= 13, reader.frames_read
    assert reader.skipped >= 5 * reader.frames_read
    assert reader.frames_read + reader.skipped == fake.count
    assert not any(k.startswith("dropped:") and k != "dropped:superseded" for k in events.counts)


def test_reconnects_with_backoff_and_goes_up_again(readers: list[CameraReader]) -> None:
    events = RecordingEvents()
    attempts: list[float] = []
    fakes: list[Any] = [SourceConnectionError("cam", "refused")] * 3 + [FakeCapture(interval_s=0.02)]

    def factory(cam: CameraConfig, stop: threading.Event) -> Any:
        attempts.append(time.monotonic())
        return factory_of(fakes.pop(0))(cam, stop)

    cam = camera(reconnect={"initial_s": 0.1, "max_s": 0.3, "jitter": 0.0})
    reader = run_reader(readers, cam, events=events, capture_factory=factory)
    wait_for(lambda: reader.up, timeout=3)
    gaps = np.diff(attempts)
    assert gaps == pytest.approx([0.1, 0.2, 0.3], abs=0.05)  # doubling, capped at max_s
    assert events.counts["reconnect"] == 3 == reader.reconnects
    assert events.up_changes[-1][1] is True


def test_watchdog_declares_a_frozen_camera_down(readers: list[CameraReader]) -> None:
    events = RecordingEvents()
    hang = threading.Event()
    reader = run_reader(
        readers,
        camera(stale_after_s=0.5),
        events=events,
        capture_factory=factory_of(FakeCapture(frames=5, interval_s=0.02, hang=hang)),
    )
    wait_for(lambda: reader.up, timeout=2)
    wait_for(lambda: reader.frames_read == 5, timeout=2)
    last = reader.last_frame_monotonic
    assert last is not None
    wait_for(lambda: not reader.up, timeout=2)  # the read is still blocked: only the watchdog can tell
    assert 0.45 <= time.monotonic() - last <= 1.2
    hang.set()


def test_stop_is_not_stuck_behind_another_cameras_open(readers: list[CameraReader], tmp_path: Path) -> None:
    reader = CameraReader(camera(str(tmp_path / "none.mp4")))
    with OPEN_LOCK:  # another camera hanging in OpenCV's (process-wide) open
        reader.start()
        time.sleep(0.3)
        started = time.monotonic()
        assert reader.stop(timeout=2)
        assert time.monotonic() - started < 0.5


def test_a_failing_event_sink_does_not_kill_the_reader(
    readers: list[CameraReader], caplog: pytest.LogCaptureFixture
) -> None:
    class FlakyEvents(RecordingEvents):
        def frame_read(self, camera: str) -> None:
            super().frame_read(camera)
            if self.counts["read"] == 1:
                raise RuntimeError("sink hiccup")

    events = FlakyEvents()
    cam = camera(reconnect={"initial_s": 0.05, "max_s": 0.05, "jitter": 0.0})
    fakes = factory_of(FakeCapture(interval_s=0.01), FakeCapture(interval_s=0.01))
    reader = run_reader(readers, cam, events=events, capture_factory=fakes)
    wait_for(lambda: events.counts["read"] >= 5, timeout=3)
    assert reader.reconnects == 1 and reader.up
    assert "sink hiccup" in caplog.text


def test_stop_readers_stops_many_at_once() -> None:
    many = [
        CameraReader(camera(id=f"c{i}"), capture_factory=factory_of(FakeCapture(interval_s=0.01)))
        for i in range(4)
    ]
    for reader in many:
        reader.start()
    started = time.monotonic()
    assert stop_readers(many, timeout=2)
    assert time.monotonic() - started < 0.5
    assert not any(reader.up for reader in many)


GOOD_IMAGE = np.zeros((4, 6, 3), np.uint8)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, None),
        ({"camera": ""}, "camera must be a non-empty str"),
        ({"image": GOOD_IMAGE[..., 0]}, "shape (H, W, 3)"),
        ({"image": np.zeros((0, 6, 3), np.uint8)}, "shape (H, W, 3)"),
        ({"image": GOOD_IMAGE.astype(np.float32)}, "dtype uint8"),
        ({"image": [[0, 0, 0]]}, "np.ndarray"),
        ({"index": -1}, "index must be an int >= 0"),
        ({"index": True}, "index must be an int >= 0"),
        ({"captured_at": float("nan")}, "captured_at must be a finite float"),
        ({"captured_at": 0.0}, "time.time()"),
        ({"monotonic": "now"}, "monotonic must be a finite float"),
    ],
)
def test_frame_is_validated(kwargs: dict[str, Any], error: str | None) -> None:
    fields = {"camera": "cam", "image": GOOD_IMAGE, "index": 0, "captured_at": time.time(), "monotonic": 1.0}
    fields.update(kwargs)
    if error is None:
        frame = Frame(**fields)
        assert (frame.height, frame.width) == (4, 6) and "cam" in repr(frame)
        with pytest.raises(AttributeError):
            frame.index = 2  # type: ignore[misc]
    else:
        with pytest.raises((ValueError, TypeError)) as info:
            Frame(**fields)
        assert error in str(info.value)


# --------------------------------------------------------------------------- files


def test_file_is_paced_at_its_frame_rate_and_ends(
    readers: list[CameraReader], tmp_path: Path, clip_factory: Callable[..., Path]
) -> None:
    clip = clip_factory(tmp_path / "c.mp4", seconds=1, fps=10)
    reader = run_reader(readers, camera(str(clip)))
    started = time.monotonic()
    wait_for(lambda: reader.ended, timeout=5)
    assert time.monotonic() - started >= 0.8  # 10 frames at 10 fps: paced like a live camera
    assert reader.frames_read == 10 and not reader.up


def test_file_loops(readers: list[CameraReader], tmp_path: Path, clip_factory: Callable[..., Path]) -> None:
    clip = clip_factory(tmp_path / "c.mp4", seconds=0.5, fps=20)
    events = RecordingEvents()
    reader = run_reader(readers, camera(str(clip), loop=True), events=events)
    wait_for(lambda: reader.frames_read >= 25, timeout=5)  # 10 frames per pass
    assert not reader.ended and reader.up
    assert events.counts["reconnect"] == 0  # looping is not a reconnect


# --------------------------------------------------------------------------- real RTSP server


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
    assert reader.up and reader.last_frame_at is not None
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
    failed_attempts = reader.reconnects
    assert 1 <= failed_attempts <= 4
    rtsp_server.start()
    wait_for(lambda: reader.up, timeout=5)
    assert reader.reconnects > failed_attempts
    assert events.counts["reconnect"] == reader.reconnects
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
        good_reader = run_reader(readers, camera(rtsp_server.url("/live"), fps=None))
        assert wait_for(lambda: good_reader.up, timeout=2.5) < 2.0
        counted = good_reader.frames_read
        time.sleep(2.0)
        assert good_reader.frames_read - counted >= 15  # ~10 fps while the other camera keeps failing
        assert not dead_reader.up


def test_open_capture_reports_a_refused_connection_without_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cam = camera(f"rtsp://admin:{PASSWORD}@127.0.0.1:{port}/x")
    with pytest.raises(SourceConnectionError) as info:
        open_capture(cam, threading.Event())
    assert "cam" in str(info.value) and PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://h/x", ("h", 554, "x")),
        ("rtsp://u:p@h:8554/a/b", ("h", 8554, "a/b")),
        ("rtsp://u:p@ss/w@cam:10554/live", ("cam", 10554, "live")),  # '@' and '/' in the password
        ("rtsp://[::1]:8554/x", ("::1", 8554, "x")),
        ("rtsps://h/x", ("h", 322, "x")),
    ],
)
def test_host_port_ignores_userinfo(url: str, expected: tuple[str, int, str]) -> None:
    assert _host_port(url, url.split(":", 1)[0]) == expected


def serve_once(reply: bytes) -> tuple[socket.socket, threading.Thread]:
    """A TCP server on 127.0.0.1 that answers one connection with ``reply`` and closes it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize(
    ("reply", "message"),
    [(b"HTTP/1.0 400 Bad Request\r\n\r\n", "is not an RTSP server"), (b"", "closed the connection")],
)
def test_probe_tells_what_answered(reply: bytes, message: str) -> None:
    server, thread = serve_once(reply)
    with server:
        cam = camera(f"rtsp://admin:{PASSWORD}@127.0.0.1:{server.getsockname()[1]}/x")
        with pytest.raises(SourceConnectionError, match=message) as info:
            open_capture(cam, threading.Event())
        thread.join(2)
    assert PASSWORD not in str(info.value)


def test_stop_interrupts_a_probe_of_a_silent_host(readers: list[CameraReader]) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        reader = CameraReader(camera(f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x", open_timeout_s=10.0))
        reader.start()
        time.sleep(0.3)
        started = time.monotonic()
        assert reader.stop(timeout=2)
        assert time.monotonic() - started < 0.5
