"""OpenCV captures: ``cv2.VideoCapture`` behind the ``Capture`` protocol, opened one at a time.

OpenCV opens are serialized process-wide (a lock inside its FFmpeg backend), so one camera stuck in
``open`` would delay every other camera's open by its open timeout. :func:`open_capture` therefore
(1) probes an ``rtsp://`` camera with a plain RTSP ``OPTIONS`` request *outside* any lock
(:mod:`crowdwatch.capture.probe`), so a host that never answers fails there without touching OpenCV's
lock; (2) waits for its turn on :data:`OPEN_LOCK`, our own mirror of OpenCV's lock, in short slices that
check the stop event, so a reader queued behind another camera's open can still be stopped at once;
(3) opens with bounded open/read timeouts. Reads are independent across threads.

FFmpeg's and OpenCV's own messages (``[rtsp @ 0x...] method DESCRIBE failed: 404``, ``[ WARN:0@...]
Stream timeout triggered``) would print raw to stderr on every retry of a failing camera, outside our
log format. Importing this module quiets them (``OPENCV_FFMPEG_LOGLEVEL=-8``, read when the first
FFmpeg capture opens, and OpenCV's log level ERROR) unless the user set ``OPENCV_FFMPEG_LOGLEVEL`` or
``OPENCV_LOG_LEVEL`` themselves; crowdwatch logs the reason instead: the probe's (refused, timed out,
an RTSP error status) or, when OpenCV fails after a good probe, a ``DESCRIBE``'s status (``RTSP 404 Not
Found``).
"""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np

from crowdwatch.capture.base import STOP_CHECK_S, Capture, SourceConnectionError, Stopped
from crowdwatch.capture.probe import describe_status, probe
from crowdwatch.config import CameraConfig

__all__ = ["FFMPEG_OPTIONS_ENV", "OPEN_LOCK", "OpenCVCapture", "open_capture", "quiet_library_logs"]

OPEN_LOCK = threading.Lock()
FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_USER_FFMPEG_OPTIONS = os.environ.get(FFMPEG_OPTIONS_ENV)
#: AV_LOG_QUIET: FFmpeg prints nothing of its own; our log line carries the reason
FFMPEG_LOGLEVEL_QUIET = "-8"


def quiet_library_logs() -> None:
    """Keep FFmpeg's and OpenCV's raw stderr messages out of the journal (see the module docstring)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_LOGLEVEL_QUIET)
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


quiet_library_logs()


class OpenCVCapture:
    """``cv2.VideoCapture`` behind the :class:`~crowdwatch.capture.base.Capture` protocol."""

    def __init__(self, capture: cv2.VideoCapture) -> None:
        self._capture = capture
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.nominal_fps = fps if 0.0 < fps <= 1000.0 else 0.0

    def grab(self) -> bool:
        return bool(self._capture.grab())

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        ok, image = self._capture.retrieve()
        return bool(ok), image

    def release(self) -> None:
        self._capture.release()

    def describe(self) -> tuple[int, int, str]:
        """(width, height, codec) as the stream declares them (codec "" when unknown)."""
        fourcc = int(self._capture.get(cv2.CAP_PROP_FOURCC) or 0)
        codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ")
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        return width, height, codec if codec.isprintable() else ""


def _ffmpeg_options(camera: CameraConfig) -> str | None:
    """OPENCV_FFMPEG_CAPTURE_OPTIONS for this camera's open; None = leave the variable alone.

    The same value serves files and devices (they ignore the RTSP keys), so the variable changes only
    when cameras use different transports: setenv from one thread while another reads the
    environment is not safe in C, so we touch it as rarely as possible. A value the user set before
    start-up is theirs: we never change it.
    """
    if _USER_FFMPEG_OPTIONS is not None:
        return None
    return f"rtsp_transport;{camera.rtsp_transport}|analyzeduration;200000|probesize;32768"


def _acquire_open_lock(stop: threading.Event) -> None:
    while not OPEN_LOCK.acquire(timeout=STOP_CHECK_S):
        if stop.is_set():
            raise Stopped


def open_capture(camera: CameraConfig, stop: threading.Event) -> Capture:
    """The default capture factory: probe, then open with OpenCV under :data:`OPEN_LOCK`."""
    if camera.kind == "stream":
        probe(camera, stop)
    _acquire_open_lock(stop)
    try:
        if stop.is_set():
            raise Stopped
        options = _ffmpeg_options(camera)
        # OpenCV reads the variable when a capture opens; we hold the open lock, so no other
        # reader's open can see our value.
        if options is not None and os.environ.get(FFMPEG_OPTIONS_ENV) != options:
            os.environ[FFMPEG_OPTIONS_ENV] = options
        if isinstance(camera.url, int):  # a device index
            capture = cv2.VideoCapture(camera.url, cv2.CAP_ANY)
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(camera.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(camera.read_timeout_s * 1000),
                cv2.CAP_PROP_N_THREADS, 1,
            ]  # fmt: skip
            capture = cv2.VideoCapture(camera.url.reveal(), cv2.CAP_FFMPEG, params)
    except cv2.error as exc:
        raise SourceConnectionError(camera.id, f"OpenCV could not open {camera.display_url}: {exc}") from None
    finally:
        OPEN_LOCK.release()
    if not capture.isOpened():
        capture.release()
        why = describe_status(camera, stop) if camera.kind == "stream" else "not a readable video"
        raise SourceConnectionError(camera.id, f"could not open {camera.display_url}: {why}")
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if width * height > camera.max_pixels:  # refused before a frame is decoded; retried with backoff
        capture.release()
        raise SourceConnectionError(
            camera.id,
            f"frames of {width}x{height} = {width * height:,} pixels are over max_pixels "
            f"({camera.max_pixels:,})",
        )
    return OpenCVCapture(capture)
