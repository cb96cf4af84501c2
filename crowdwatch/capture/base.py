"""What the capture room shares: its exceptions, the ``Capture`` protocol, reader events and state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from crowdwatch.config import CameraConfig
from crowdwatch.errors import CrowdwatchError
from crowdwatch.secrets import mask_url

__all__ = [
    "STOP_CHECK_S",
    "CameraState",
    "Capture",
    "CaptureFactory",
    "NullEvents",
    "ReaderEvents",
    "SourceConnectionError",
    "SourceError",
    "Stopped",
]

#: How often an open that waits (TCP connect, RTSP reply, the open lock) checks whether to stop.
STOP_CHECK_S = 0.1


class SourceError(CrowdwatchError):
    """A camera cannot deliver frames. ``camera`` is its id; the message never holds a password."""

    def __init__(self, camera: str, message: str) -> None:
        self.camera = camera
        super().__init__(f"{camera}: {mask_url(message)}")


class SourceConnectionError(SourceError):
    """The camera could not be opened (refused, timed out, not a video)."""


class Stopped(Exception):
    """The reader was asked to stop while opening (probing, or waiting for the open lock)."""


class Capture(Protocol):
    """What a reader needs from an opened camera (a thin view of ``cv2.VideoCapture``)."""

    nominal_fps: float  # the rate the stream declares (not the sampling rate, fps), 0 when unknown

    def grab(self) -> bool: ...
    def retrieve(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...


#: Opens a camera; gives up (raising :class:`Stopped`) once the event is set.
CaptureFactory = Callable[[CameraConfig, threading.Event], Capture]


class ReaderEvents(Protocol):
    """Callbacks from reader threads (thread-safe and quick; the pipeline's metrics implement them)."""

    def frame_read(self, camera: str) -> None: ...
    def frame_dropped(self, camera: str, reason: str, n: int = 1) -> None: ...
    def reconnect(self, camera: str) -> None: ...
    def camera_up(self, camera: str, up: bool) -> None: ...
    def frame_captured(self, camera: str, captured_at: float) -> None: ...


class NullEvents:
    """ReaderEvents that ignore everything."""

    def frame_read(self, camera: str) -> None:
        pass

    def frame_dropped(self, camera: str, reason: str, n: int = 1) -> None:
        pass

    def reconnect(self, camera: str) -> None:
        pass

    def camera_up(self, camera: str, up: bool) -> None:
        pass

    def frame_captured(self, camera: str, captured_at: float) -> None:
        pass


@dataclass(frozen=True)
class CameraState:
    """A reader's own view of its camera at one moment (what /healthz reports).

    ``up`` is the reader's decision (frames arriving, not declared stale by its watchdog);
    ``last_frame_age_s`` is the time since the last frame came out of the stream, on the reader's
    monotonic clock, None before the first frame.
    """

    camera: str
    up: bool
    last_frame_age_s: float | None
    #: why the camera is down (masked, as logged); None while up or before the first attempt ends
    reason: str | None = None
