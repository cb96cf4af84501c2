"""Camera readers: one thread per camera, feeding a latest-frame slot.

A :class:`CameraReader` opens its camera through a capture factory (OpenCV by default, a fake in unit
tests), reads frames as fast as the camera sends them, keeps those that fit the camera's sampling rate
(``fps``; the others are skipped at read time and counted in ``skipped``, not as drops), and puts each
kept frame in a one-frame slot. A frame that replaces one the worker has not taken yet is dropped with
reason ``superseded``, so a slow model never makes latency grow. On a read failure it releases the
capture and reconnects with capped exponential backoff and jitter; a watchdog thread declares the
camera down when no frame arrived for ``stale_after_s`` even if a read is still blocked.

OpenCV opens are serialized process-wide (a lock inside its FFmpeg backend), so one camera stuck in
``open`` would delay every other camera's open by its open timeout. :func:`open_capture` therefore
(1) probes an ``rtsp://`` camera with a plain RTSP ``OPTIONS`` request *outside* any lock, so a host
that never answers fails there without touching OpenCV's lock; (2) waits for its turn on
:data:`OPEN_LOCK`, our own mirror of OpenCV's lock, in short slices that check the stop event, so a
reader queued behind another camera's open can still be stopped at once; (3) opens with bounded
open/read timeouts. Reads are independent across threads. Video files are paced at their own frame
rate so that a file behaves like a live camera (and are optionally looped).
"""

from __future__ import annotations

import errno
import logging
import os
import random
import select
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Literal, Protocol

import cv2
import numpy as np

from crowdwatch.config import CameraConfig, ReconnectSettings
from crowdwatch.errors import CrowdwatchError
from crowdwatch.frames import Frame
from crowdwatch.secrets import mask_url

__all__ = [
    "OPEN_LOCK",
    "Capture",
    "CameraReader",
    "CaptureFactory",
    "NullEvents",
    "ReaderEvents",
    "SourceConnectionError",
    "SourceError",
    "backoff_delay",
    "open_capture",
    "stop_readers",
]

logger = logging.getLogger(__name__)

OPEN_LOCK = threading.Lock()
FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_USER_FFMPEG_OPTIONS = os.environ.get(FFMPEG_OPTIONS_ENV)
DEFAULT_FILE_FPS = 25.0
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
_LOCK_SLICE_S = 0.1


class SourceError(CrowdwatchError):
    """A camera cannot deliver frames. ``camera`` is its id; the message never holds a password."""

    def __init__(self, camera: str, message: str) -> None:
        self.camera = camera
        super().__init__(f"{camera}: {mask_url(message)}")


class SourceConnectionError(SourceError):
    """The camera could not be opened (refused, timed out, not a video)."""


class _Stopped(Exception):
    """The reader was asked to stop while waiting to open."""


class Capture(Protocol):
    """What a reader needs from an opened camera (a thin view of ``cv2.VideoCapture``)."""

    fps: float  # the stream's nominal frame rate, 0 when unknown

    def grab(self) -> bool: ...
    def retrieve(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[CameraConfig, threading.Event], Capture]


class ReaderEvents(Protocol):
    """Callbacks from reader threads (must be thread-safe and quick; the metrics sink implements them)."""

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


def backoff_delay(
    failures: int, settings: ReconnectSettings, rand: Callable[[], float] = random.random
) -> float:
    """Wait before reconnect attempt number ``failures`` (>= 1): ``initial * 2**(failures-1)`` capped
    at ``max_s``, then shortened by a random fraction of up to ``jitter`` so cameras that failed
    together do not retry in lockstep. Never above ``max_s``."""
    base = min(settings.max_s, settings.initial_s * 2.0 ** min(max(failures - 1, 0), 30))
    return base * (1.0 - settings.jitter * rand())


# --------------------------------------------------------------------------- OpenCV captures


class OpenCVCapture:
    """``cv2.VideoCapture`` behind the :class:`Capture` protocol."""

    def __init__(self, capture: cv2.VideoCapture) -> None:
        self._capture = capture
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps <= 1000.0 else 0.0

    def grab(self) -> bool:
        return bool(self._capture.grab())

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        ok, image = self._capture.retrieve()
        return bool(ok), image

    def release(self) -> None:
        self._capture.release()


def _host_port(url: str, scheme: str) -> tuple[str, int, str]:
    """(host, port, path) of a stream URL, ignoring any userinfo (a password may contain '/' or '@')."""
    rest = url.split("://", 1)[1]
    rest = rest.rsplit("@", 1)[-1]
    hostport, _, path = rest.partition("/")
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = hostport.partition(":")
    port = int(port_text) if port_text.isdigit() else DEFAULT_PORTS.get(scheme, 554)
    return host, port, path


def _connect(host: str, port: int, deadline: float, stop: threading.Event) -> socket.socket:
    """TCP connect that gives up at ``deadline`` and checks ``stop`` every slice (a blocking connect to
    a host that drops SYNs could not be interrupted). Name resolution itself may still block."""
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(address)
            while code == errno.EINPROGRESS:
                if stop.is_set():
                    raise _Stopped
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(errno.ETIMEDOUT, "timed out")
                if select.select([], [sock], [], min(remaining, _LOCK_SLICE_S))[1]:
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error


def _probe(camera: CameraConfig, stop: threading.Event) -> None:
    """Fail fast, outside OpenCV's open lock, when the server does not answer RTSP (or TCP)."""
    url = camera.url.reveal()  # type: ignore[union-attr]
    scheme = camera.url.scheme  # type: ignore[union-attr]
    host, port, path = _host_port(url, scheme)
    deadline = time.monotonic() + camera.open_timeout_s
    try:
        with _connect(host, port, deadline, stop) as sock:
            if scheme != "rtsp":
                return
            target = f"rtsp://{host if ':' not in host else f'[{host}]'}:{port}/{path}"
            sock.settimeout(_LOCK_SLICE_S)
            sock.sendall(f"OPTIONS {target} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: crowdwatch\r\n\r\n".encode())
            reply = b""
            while len(reply) < 5:
                if stop.is_set():
                    raise _Stopped
                if time.monotonic() > deadline:
                    raise SourceConnectionError(
                        camera.id, f"{host}:{port} accepted TCP but did not answer RTSP"
                    )
                try:
                    chunk = sock.recv(64)
                except TimeoutError:
                    continue
                if not chunk:
                    raise SourceConnectionError(camera.id, f"{host}:{port} closed the connection")
                reply += chunk
            if not reply.startswith(b"RTSP/"):
                raise SourceConnectionError(camera.id, f"{host}:{port} is not an RTSP server")
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise SourceConnectionError(camera.id, f"cannot connect to {host}:{port}: {reason}") from None


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
    while not OPEN_LOCK.acquire(timeout=_LOCK_SLICE_S):
        if stop.is_set():
            raise _Stopped


def open_capture(camera: CameraConfig, stop: threading.Event) -> Capture:
    """The default capture factory: probe, then open with OpenCV under :data:`OPEN_LOCK`."""
    if camera.kind == "stream":
        _probe(camera, stop)
    _acquire_open_lock(stop)
    try:
        if stop.is_set():
            raise _Stopped
        options = _ffmpeg_options(camera)
        # OpenCV reads the variable when a capture opens; we hold the open lock, so no other
        # reader's open can see our value.
        if options is not None and os.environ.get(FFMPEG_OPTIONS_ENV) != options:
            os.environ[FFMPEG_OPTIONS_ENV] = options
        if camera.kind == "device":
            capture = cv2.VideoCapture(int(camera.url), cv2.CAP_ANY)  # type: ignore[arg-type]
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(camera.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(camera.read_timeout_s * 1000),
                cv2.CAP_PROP_N_THREADS, 1,
            ]  # fmt: skip
            capture = cv2.VideoCapture(camera.url.reveal(), cv2.CAP_FFMPEG, params)  # type: ignore[union-attr]
    except cv2.error as exc:
        raise SourceConnectionError(camera.id, f"OpenCV could not open {camera.display_url}: {exc}") from None
    finally:
        OPEN_LOCK.release()
    if not capture.isOpened():
        capture.release()
        raise SourceConnectionError(camera.id, f"could not open {camera.display_url}")
    return OpenCVCapture(capture)


# --------------------------------------------------------------------------- reader

Outcome = Literal["eof", "error", "stopped", "open_failed"]


class CameraReader:
    """Reads one camera on its own thread into a latest-frame slot; see the module docstring.

    ``on_frame`` (a ``threading.Event`` or ``threading.Condition``) is set/notified after each new
    frame. Counters (read by other threads, written only by the reader): ``frames_read`` (frames that
    passed sampling), ``skipped`` (not sampled), ``superseded``, ``decode_errors``, ``reconnects``.
    """

    def __init__(
        self,
        camera: CameraConfig,
        events: ReaderEvents | None = None,
        capture_factory: CaptureFactory | None = None,
        on_frame: threading.Event | threading.Condition | None = None,
    ) -> None:
        self.camera = camera
        self.events: ReaderEvents = events if events is not None else NullEvents()
        self._factory = capture_factory or open_capture
        self._on_frame = on_frame
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the slot and the last-frame times
        self._up_lock = threading.Lock()  # up/down transitions and their events
        self._slot: Frame | None = None
        self._up = False
        self._last_monotonic: float | None = None
        self._last_wall: float | None = None
        self._ended = False
        self._index = 0
        self._next_due: float | None = None
        self._interval: float | None = None  # moving average of the source's frame interval
        self.frames_read = self.skipped = self.superseded = self.decode_errors = self.reconnects = 0
        self._thread = threading.Thread(target=self._run, name=f"reader-{camera.id}", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name=f"watchdog-{camera.id}", daemon=True)

    # -- public API

    @property
    def up(self) -> bool:
        return self._up

    @property
    def last_frame_at(self) -> float | None:
        """Wall-clock time (``time.time()``) of the last frame out of the stream, None before any."""
        return self._last_wall

    @property
    def last_frame_monotonic(self) -> float | None:
        return self._last_monotonic

    @property
    def ended(self) -> bool:
        """True once a non-looping video file has been read to its end (the thread has finished)."""
        return self._ended

    def start(self) -> None:
        self.events.camera_up(self.camera.id, False)
        self._thread.start()
        self._watchdog.start()

    def request_stop(self) -> None:
        """Ask the threads to stop without waiting (see :func:`stop_readers` to stop many at once)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop and join, waiting at most ``timeout`` s; False if the reader is still blocked in OpenCV
        (it is a daemon thread and exits on its own when the blocking call times out)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in (self._thread, self._watchdog):
            if thread.is_alive() or thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        alive = self._thread.is_alive()
        if alive:
            logger.warning(
                "%s: reader still blocked in the capture library after %.1f s", self.camera.id, timeout
            )
        return not alive

    def take(self) -> Frame | None:
        """The latest frame, or None; clears the slot."""
        with self._lock:
            frame, self._slot = self._slot, None
        return frame

    # -- state

    def _set_up(self, up: bool, reason: str = "") -> None:
        # One lock around the change *and* its event: the reader and the watchdog may race, and the
        # camera_up events must arrive in the order of the changes (the gauge keeps the last one).
        with self._up_lock:
            if up == self._up:
                return
            self._up = up
            if up:
                logger.info("%s: camera up (%s)", self.camera.id, self.camera.display_url)
            else:  # an asked-for stop or the end of a file is no trouble
                level = logging.INFO if self._stop.is_set() or self._ended else logging.WARNING
                logger.log(level, "%s: camera down: %s", self.camera.id, mask_url(reason))
            self.events.camera_up(self.camera.id, up)

    def _watch(self) -> None:
        stale = self.camera.stale_after_s
        while not self._stop.wait(min(0.25, stale / 4)):
            last = self._last_monotonic
            if self._up and last is not None and time.monotonic() - last > stale:
                self._set_up(False, f"no frame for {stale:g} s")

    # -- reader thread

    def _run(self) -> None:
        failures = 0  # consecutive attempts that produced no frame
        reopen_now = True
        try:
            while not self._stop.is_set():
                if not reopen_now:
                    delay = backoff_delay(failures, self.camera.reconnect)
                    logger.info("%s: reconnecting in %.1f s (attempt %d)", self.camera.id, delay, failures)
                    if self._stop.wait(delay):
                        break
                    self.reconnects += 1
                    self.events.reconnect(self.camera.id)
                try:
                    outcome, frames, reason = self._session()
                except Exception:  # a bug, or a failing event sink: log it (masked), retry with backoff
                    logger.error("%s: reader error:\n%s", self.camera.id, mask_url(traceback.format_exc()))
                    outcome, frames, reason = "error", 0, "reader error"
                failures = 0 if frames else failures
                if outcome == "stopped":
                    break
                if outcome == "eof" and frames and self.camera.kind == "file":
                    if not self.camera.loop:
                        logger.info("%s: end of file", self.camera.id)
                        self._ended = True
                        break
                    reopen_now = True  # loop: start again at once, no backoff, not a reconnect
                    continue
                reopen_now = False
                failures += 1
                if outcome == "open_failed":  # first of a streak: warning; repeats: debug noise
                    logger.log(logging.WARNING if failures == 1 else logging.DEBUG, "%s", reason)
                self._set_up(False, reason)
        finally:
            self._set_up(False, "reader stopped")

    def _session(self) -> tuple[Outcome, int, str]:
        """Open, read until failure/end/stop, release: (outcome, frames grabbed, reason)."""
        try:
            capture = self._factory(self.camera, self._stop)
        except _Stopped:
            return "stopped", 0, "stopped"
        except SourceError as exc:
            return "open_failed", 0, str(exc)
        outcome, frames = self._read_session(capture)
        return outcome, frames, "end of stream" if outcome == "eof" else "read failed"

    def _read_session(self, capture: Capture) -> tuple[Outcome, int]:
        """Read until failure, end of file or stop; release the capture. Returns (outcome, frames grabbed)."""
        frames = 0
        pace = 0.0
        if self.camera.kind == "file":
            pace = 1.0 / (capture.fps or DEFAULT_FILE_FPS)
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                if not capture.grab():
                    return ("eof" if self.camera.kind == "file" else "error"), frames
                now, wall = time.monotonic(), time.time()
                frames += 1
                self._note_frame(now, wall)
                if self._sample(now):
                    self._retrieve(capture, now, wall)
                else:
                    self.skipped += 1
                if pace:
                    delay = started + frames * pace - time.monotonic()
                    if delay < -1.0:  # stalled (slow disk, stopped process): resume pacing from now
                        started = time.monotonic() - frames * pace
                    elif delay > 0 and self._stop.wait(delay):
                        break
            return "stopped", frames
        finally:
            try:
                capture.release()
            except Exception as exc:  # noqa: BLE001 - releasing a broken capture must not kill the reader
                logger.warning("%s: release failed: %s", self.camera.id, mask_url(repr(exc)))

    def _note_frame(self, now: float, wall: float) -> None:
        last = self._last_monotonic
        if last is not None and 0 < now - last < 5.0:
            self._interval = (
                (now - last) if self._interval is None else 0.9 * self._interval + 0.1 * (now - last)
            )
        with self._lock:
            self._last_monotonic, self._last_wall = now, wall
        if not self._up:
            self._set_up(True)

    def _sample(self, now: float) -> bool:
        """Keep this frame under the sampling rate? Scheduled (next_due += period) so the long-run
        rate is exact; half a source interval of tolerance absorbs arrival jitter."""
        fps = self.camera.fps
        if fps is None:
            return True
        period = 1.0 / fps
        tolerance = 0.5 * (self._interval or 0.0)
        if self._next_due is not None and now < self._next_due - tolerance:
            return False
        behind = self._next_due is None or now - self._next_due > period
        self._next_due = (now if behind else self._next_due) + period  # type: ignore[operator]
        return True

    def _retrieve(self, capture: Capture, now: float, wall: float) -> None:
        ok, image = capture.retrieve()
        if not ok or image is None or image.size == 0:
            self.decode_errors += 1
            self.events.frame_dropped(self.camera.id, "decode_error", 1)
            return
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        frame = Frame(self.camera.id, np.ascontiguousarray(image, dtype=np.uint8), self._index, wall, now)
        self._index += 1
        with self._lock:
            replaced = self._slot is not None
            self._slot = frame
        self.frames_read += 1
        self.events.frame_read(self.camera.id)
        self.events.frame_captured(self.camera.id, wall)
        if replaced:
            self.superseded += 1
            self.events.frame_dropped(self.camera.id, "superseded", 1)
        self._notify()

    def _notify(self) -> None:
        signal = self._on_frame
        if isinstance(signal, threading.Event):
            signal.set()
        elif signal is not None:
            with signal:
                signal.notify_all()


def stop_readers(readers: Iterable[CameraReader], timeout: float = 5.0) -> bool:
    """Stop many readers in parallel, all within ``timeout`` s; True if every thread finished."""
    readers = list(readers)
    for reader in readers:
        reader.request_stop()
    deadline = time.monotonic() + timeout
    return all([reader.stop(max(0.0, deadline - time.monotonic())) for reader in readers])
