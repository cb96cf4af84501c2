"""Fakes and helpers for the camera reader tests: recording events, synthetic captures, camera configs.

The ``readers`` fixture is registered for every test by the root ``tests/conftest.py``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from crowdwatch.capture.base import SourceConnectionError
from crowdwatch.capture.reader import CameraReader
from crowdwatch.config import CameraConfig


class RecordingEvents:
    """ReaderEvents that remember everything, thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.up_changes: list[tuple[float, bool]] = []
        self.last_captured: float | None = None  # time.monotonic() of the last frame_captured

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
            self.last_captured = time.monotonic()


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
        self.nominal_fps = fps
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


@pytest.fixture(name="readers")
def fixture_readers() -> Iterator[list[CameraReader]]:
    """Readers a test started (via :func:`run_reader`), stopped after the test."""
    started: list[CameraReader] = []
    yield started
    for reader in started:
        reader.stop(timeout=5)


def run_reader(readers: list[CameraReader], cam: CameraConfig, **kwargs: Any) -> CameraReader:
    reader = CameraReader(cam, **kwargs)
    readers.append(reader)
    reader.start()
    return reader
