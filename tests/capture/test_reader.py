"""Camera readers on fake captures: latest-frame slot, sampling, backoff, watchdog, stopping."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.capture_fakes import FakeCapture, RecordingEvents, camera, factory_of, run_reader, wait_for

from crowdwatch.capture.base import SourceConnectionError
from crowdwatch.capture.opencv import OPEN_LOCK
from crowdwatch.capture.reader import CameraReader, backoff_delay, stop_readers
from crowdwatch.config import CameraConfig, ReconnectSettings
from crowdwatch.frames import Frame


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
        done = events.counts["read"] == 60  # read before take(): then an empty slot means nothing is left
        frame = reader.take()
        if frame is None and done:
            break
        if frame is not None:
            taken.append(frame)
            time.sleep(0.03)  # a model slower than the camera
    superseded = events.counts["dropped:superseded"]
    assert superseded > 0
    assert len(taken) + superseded == 60  # every frame was either taken or counted as dropped
    assert events.counts["read"] == 60
    indices = [f.index for f in taken]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert all(f.camera == "cam" and f.image.shape == (24, 32, 3) for f in taken)


def test_sampling_rate_skips_at_read_time_without_counting_drops(readers: list[CameraReader]) -> None:
    """At fps 10 on a faster source, the reader keeps about one frame per 0.1 s and skips the rest at
    grab time, without counting them as drops. Bounds that hold on a loaded machine: a slow machine
    grabs fewer frames and wakes late, but the reader never keeps more than its rate allows."""
    events = RecordingEvents()
    fake = FakeCapture(interval_s=0.001)  # up to ~1000 frames/s; a loaded machine still grabs 100s
    started = time.monotonic()
    reader = run_reader(readers, camera(fps=10), events=events, capture_factory=factory_of(fake))
    wait_for(lambda: events.counts["read"] >= 5, timeout=30)
    reader.stop()
    elapsed = time.monotonic() - started
    read = events.counts["read"]
    assert read <= 10 * elapsed + 1, (read, elapsed)  # one kept per sampling period, at most
    assert fake.count - read >= 2 * read, (fake.count, read)  # the others grabbed but skipped
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
    assert events.counts["reconnect"] == 3
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
    wait_for(lambda: events.counts["read"] == 5, timeout=2)
    last = events.last_captured
    assert last is not None
    wait_for(lambda: not reader.up, timeout=2)  # the read is still blocked: only the watchdog can tell
    assert 0.45 <= time.monotonic() - last <= 1.2
    state = reader.state()
    assert not state.up and state.last_frame_age_s is not None and state.last_frame_age_s >= 0.45
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
    assert events.counts["reconnect"] == 1 and reader.up
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


@pytest.mark.parametrize("channels", [None, 1, 4])
def test_gray_and_bgra_frames_arrive_as_bgr(readers: list[CameraReader], channels: int | None) -> None:
    class OtherChannels(FakeCapture):
        def retrieve(self) -> tuple[bool, np.ndarray | None]:
            shape = (24, 32) if channels is None else (24, 32, channels)
            return True, np.full(shape, 7, np.uint8)

    wake = threading.Event()
    reader = run_reader(readers, camera(), on_frame=wake, capture_factory=factory_of(OtherChannels(frames=1)))
    assert wake.wait(2)
    frame = reader.take()
    assert frame is not None and frame.image.shape == (24, 32, 3) and frame.image[0, 0].tolist() == [7, 7, 7]


def test_an_image_that_is_not_8_bit_is_a_decode_error(readers: list[CameraReader]) -> None:
    class SixteenBit(FakeCapture):
        def retrieve(self) -> tuple[bool, np.ndarray | None]:
            return True, np.zeros((24, 32, 3), np.uint16)

    events = RecordingEvents()
    run_reader(readers, camera(), events=events, capture_factory=factory_of(SixteenBit(frames=3)))
    wait_for(lambda: events.counts["dropped:decode_error"] == 3, timeout=2)
    assert events.counts["read"] == 0


def test_frames_over_max_pixels_are_dropped(readers: list[CameraReader]) -> None:
    events = RecordingEvents()
    run_reader(
        readers, camera(max_pixels=24 * 32 - 1), events=events, capture_factory=factory_of(FakeCapture(3))
    )
    wait_for(lambda: events.counts["dropped:oversized"] == 3, timeout=2)
    assert events.counts["read"] == 0
