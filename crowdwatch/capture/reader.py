"""The camera reader: one thread per camera feeding a latest-frame slot, and a watchdog beside it.

A :class:`CameraReader` opens its camera through a capture factory
(:func:`~crowdwatch.capture.opencv.open_capture` by default, a fake in unit tests), reads frames as
fast as the camera sends them, keeps those that fit the camera's sampling rate (``fps``; the others
are skipped at read time, not counted as drops), and puts each kept frame in a one-frame slot. A frame
that replaces one the worker has not taken yet is dropped with reason ``superseded``, so a slow model
never makes latency grow. On a read failure it releases the capture and reconnects with capped
exponential backoff and jitter; a watchdog thread declares the camera down when no frame arrived for
``stale_after_s`` even if a read is still blocked. Video files are paced at their own frame rate so
that a file behaves like a live camera (and are optionally looped).

The reader is the one judge of its camera's state: :meth:`CameraReader.state` (up or down, and the age
of the last frame on the reader's own clock) is what /healthz reports. Counts go out through
:class:`~crowdwatch.capture.base.ReaderEvents`; the reader keeps none of its own.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np

from crowdwatch.capture.base import (
    CameraState,
    Capture,
    CaptureFactory,
    NullEvents,
    ReaderEvents,
    SourceError,
    Stopped,
)
from crowdwatch.capture.opencv import open_capture
from crowdwatch.config import CameraConfig, ReconnectSettings
from crowdwatch.frames import Frame
from crowdwatch.images import as_bgr
from crowdwatch.secrets import mask_url

__all__ = ["DEFAULT_FILE_FPS", "CameraReader", "backoff_delay", "stop_readers"]

logger = logging.getLogger(__name__)

DEFAULT_FILE_FPS = 25.0


def backoff_delay(
    failures: int, settings: ReconnectSettings, rand: Callable[[], float] = random.random
) -> float:
    """Wait before reconnect attempt number ``failures`` (>= 1): ``initial * 2**(failures-1)`` capped
    at ``max_s``, then shortened by a random fraction of up to ``jitter`` so cameras that failed
    together do not retry in lockstep. Never above ``max_s``."""
    base = min(settings.max_s, settings.initial_s * 2.0 ** min(max(failures - 1, 0), 30))
    return base * (1.0 - settings.jitter * rand())


Outcome = Literal["eof", "error", "stopped", "open_failed"]


class CameraReader:
    """Reads one camera on its own thread into a latest-frame slot; see the module docstring.

    ``on_frame`` (a ``threading.Event`` or ``threading.Condition``) is set/notified after each new
    frame. ``events`` hears of every frame read, dropped or captured, reconnect and up/down change.
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
        self._lock = threading.Lock()  # the slot and the last-frame time
        self._up_lock = threading.Lock()  # up/down transitions and their events
        self._slot: Frame | None = None
        self._up = False
        self._down_reason: str | None = None  # why the camera is down, as logged (masked)
        self._last_monotonic: float | None = None
        self._ended = False
        self._index = 0
        self._next_due: float | None = None
        self._interval: float | None = None  # moving average of the source's frame interval
        #: the rate the stream declared when it was last opened (0: unknown or not opened yet)
        self.nominal_fps = 0.0
        self._oversized_logged = False  # warn of frames over max_pixels once
        self._thread = threading.Thread(target=self._run, name=f"reader-{camera.id}", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name=f"watchdog-{camera.id}", daemon=True)

    # -- public API

    @property
    def camera_id(self) -> str:
        return self.camera.id

    @property
    def up(self) -> bool:
        """The reader's decision: frames arrive and the watchdog has not declared the camera stale."""
        return self._up

    def state(self) -> CameraState:
        """Up or down, and the age of the last frame on the reader's clock (what /healthz reports)."""
        with self._lock:
            last = self._last_monotonic
        age = None if last is None else max(0.0, time.monotonic() - last)
        return CameraState(self.camera.id, self._up, age, None if self._up else self._down_reason)

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
            if not up and reason:
                self._down_reason = mask_url(reason)
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
        open_failures = 0  # consecutive attempts that could not open, since the last frame
        reopen_now = True
        try:
            while not self._stop.is_set():
                if not reopen_now:
                    delay = backoff_delay(failures, self.camera.reconnect)
                    logger.info("%s: reconnecting in %.1f s (attempt %d)", self.camera.id, delay, failures)
                    if self._stop.wait(delay):
                        break
                    self.events.reconnect(self.camera.id)
                try:
                    outcome, frames, reason = self._session()
                except Exception:  # a bug, or a failing event sink: log it (masked), retry with backoff
                    logger.error("%s: reader error:\n%s", self.camera.id, mask_url(traceback.format_exc()))
                    outcome, frames, reason = "error", 0, "reader error"
                if frames:
                    failures = open_failures = 0
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
                if outcome == "open_failed":  # each failed attempt says why; the first of a streak warns
                    open_failures += 1  # (a streak starts at the first failed open after a frame)
                    logger.log(logging.WARNING if open_failures == 1 else logging.INFO, "%s", reason)
                self._set_up(False, reason)
        finally:
            self._set_up(False, "reader stopped")

    def _session(self) -> tuple[Outcome, int, str]:
        """Open, read until failure/end/stop, release: (outcome, frames grabbed, reason)."""
        try:
            capture = self._factory(self.camera, self._stop)
        except Stopped:
            return "stopped", 0, "stopped"
        except SourceError as exc:
            return "open_failed", 0, str(exc)
        return self._read_session(capture)

    def _read_session(self, capture: Capture) -> tuple[Outcome, int, str]:
        """Read until failure, end of file or stop; release the capture.

        Returns (outcome, new frames grabbed, reason). Only new observations count: a frame that came
        out of a stalled read is dropped here (see :meth:`_stalled`) before it touches the watchdog,
        the slot or any counter of frames read.
        """
        frames = 0
        pace = 0.0
        self.nominal_fps = capture.nominal_fps
        if self.camera.kind == "file":
            pace = 1.0 / (capture.nominal_fps or DEFAULT_FILE_FPS)
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                grab_started = time.monotonic()
                if not capture.grab():
                    if self.camera.kind == "file":
                        return "eof", frames, "end of stream"
                    return "error", frames, "read failed"
                now, wall = time.monotonic(), time.time()
                if self._stalled(now - grab_started):
                    self.events.frame_dropped(self.camera.id, "stalled", 1)
                    return "error", frames, f"stream stalled: no data for {self.camera.read_timeout_s:g} s"
                frames += 1
                self._note_frame(now)
                if self._sample(now):
                    self._retrieve(capture, now, wall)
                if pace:
                    delay = started + frames * pace - time.monotonic()
                    if delay < -1.0:  # stalled (slow disk, stopped process): resume pacing from now
                        started = time.monotonic() - frames * pace
                    elif delay > 0 and self._stop.wait(delay):
                        break
            return "stopped", frames, "stopped"
        finally:
            try:
                capture.release()
            except Exception as exc:  # releasing a broken capture must not kill the reader
                logger.warning("%s: release failed: %s", self.camera.id, mask_url(repr(exc)))

    def _stalled(self, grab_s: float) -> bool:
        """Did the frame just grabbed come out of a stalled read (so it is not a new observation)?

        Streams only: the grab returned only after the read timeout, i.e. OpenCV's interrupt fired
        because no data came for ``read_timeout_s``. What FFmpeg hands back then is a frame held in its
        demuxer/decoder, flushed out by the timeout: its data arrived before the stall (with B-frames,
        several such frames follow). The session ends as a read failure, so the camera goes down at
        once and reconnects; a live camera's next session starts at the live edge instead of a
        backlog. Files (a slow disk is not a stale scene) and devices (no read timeout) are exempt.

        The stream's timestamps are not a test of newness: FFmpeg's RTSP client restarts them about
        0.2 s into every session (when the first RTCP sender report arrives, 200 ms -> 0 ms), and
        cameras may stamp distinct frames alike; OpenCV never hands back one decoded frame twice.
        """
        return self.camera.kind == "stream" and grab_s >= self.camera.read_timeout_s

    def _note_frame(self, now: float) -> None:
        last = self._last_monotonic
        if last is not None and 0 < now - last < 5.0:
            self._interval = (
                (now - last) if self._interval is None else 0.9 * self._interval + 0.1 * (now - last)
            )
        with self._lock:
            self._last_monotonic = now
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
        due = self._next_due
        self._next_due = (now if due is None or now - due > period else due) + period  # restart when behind
        return True

    def _retrieve(self, capture: Capture, now: float, wall: float) -> None:
        ok, image = capture.retrieve()
        height, width = image.shape[:2] if ok and image is not None and image.ndim >= 2 else (0, 0)
        if height * width > self.camera.max_pixels:
            # the stream changed size after the open check (which refuses such cameras outright)
            self.events.frame_dropped(self.camera.id, "oversized", 1)
            logger.log(
                logging.DEBUG if self._oversized_logged else logging.WARNING,
                "%s: frame of %dx%d over max_pixels (%d): dropped",
                self.camera.id, width, height, self.camera.max_pixels,
            )  # fmt: skip
            self._oversized_logged = True
            return
        bgr = _frame_image(image) if ok else None
        if bgr is None:
            self.events.frame_dropped(self.camera.id, "decode_error", 1)
            return
        frame = Frame(self.camera.id, bgr, self._index, wall, now)
        self._index += 1
        with self._lock:
            replaced = self._slot is not None
            self._slot = frame
        self.events.frame_read(self.camera.id)
        self.events.frame_captured(self.camera.id, wall)
        if replaced:
            self.events.frame_dropped(self.camera.id, "superseded", 1)
        self._notify()

    def _notify(self) -> None:
        signal = self._on_frame
        if isinstance(signal, threading.Event):
            signal.set()
        elif signal is not None:
            with signal:
                signal.notify_all()


def _frame_image(image: np.ndarray | None) -> np.ndarray | None:
    """The decoded image as contiguous BGR uint8, or None when nothing usable was decoded."""
    if image is None or image.size == 0:
        return None
    try:
        return np.ascontiguousarray(as_bgr(image))
    except (TypeError, ValueError):  # not an 8-bit gray, BGR or BGRA image
        return None


def stop_readers(readers: Iterable[CameraReader], timeout: float = 5.0) -> bool:
    """Stop many readers in parallel, all within ``timeout`` s; True if every thread finished."""
    readers = list(readers)
    for reader in readers:
        reader.request_stop()
    deadline = time.monotonic() + timeout
    return all([reader.stop(max(0.0, deadline - time.monotonic())) for reader in readers])
