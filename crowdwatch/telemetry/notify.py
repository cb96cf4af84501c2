"""systemd service notifications (sd_notify), spoken directly over $NOTIFY_SOCKET.

The protocol is one datagram of newline-separated ``KEY=VALUE`` lines sent to the AF_UNIX socket named by
``$NOTIFY_SOCKET`` (a path, or an abstract-namespace name written with a leading ``@``). Without the
variable every call is a no-op, so ``crowdwatch run`` behaves the same from a terminal.

The watchdog is tied to progress, not liveness: :class:`WatchdogPinger` sends ``WATCHDOG=1`` only while
the pipeline has processed a frame recently, so systemd restarts a wedged process (frozen camera reads,
stuck inference) even though it is still alive. ``WatchdogSec=`` in the unit sets ``$WATCHDOG_USEC``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)


def _socket_address(value: str) -> str | bytes:
    """Map ``$NOTIFY_SOCKET`` to an address for ``socket.sendto`` ('@name' is the abstract namespace)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


class Notifier:
    """Sends sd_notify messages; every method is a no-op when ``address`` is None.

    Send failures are logged (once per kind of error) and never raised: a lost notification must not
    stop the pipeline, and systemd reacts to missing READY/WATCHDOG on its own.
    """

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, message: str) -> bool:
        """Send one datagram; returns True when it was sent."""
        if self.address is None:
            return False
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(message.encode(), _socket_address(self.address))
            except OSError as exc:
                kind = type(exc).__name__
                if kind not in self._warned:
                    self._warned.add(kind)
                    logger.warning("sd_notify to %s failed: %s", self.address, exc)
                return False
        return True

    def ready(self) -> bool:
        return self.notify(f"READY=1\nMAINPID={os.getpid()}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        # STATUS= is one line; a newline would start a new (bogus) assignment.
        return self.notify("STATUS=" + " ".join(text.splitlines()))

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def watchdog_interval_s(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, or None when the watchdog is off or meant for another pid."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 2e6


class WatchdogPinger:
    """Thread that sends WATCHDOG=1 every ``interval_s`` while ``progress()`` is recent.

    ``progress`` returns the ``time.monotonic()`` of the last processed frame (None before the first).
    Pings stop as soon as that is ``max_age_s`` old; they resume when progress resumes. ``interval_s``
    defaults to half of ``$WATCHDOG_USEC``; when that is unset, ``start()`` does nothing.
    """

    def __init__(
        self,
        notifier: Notifier,
        progress: Callable[[], float | None],
        max_age_s: float,
        *,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
        self.notifier = notifier
        self.progress = progress
        self.max_age_s = max_age_s
        self.interval_s = watchdog_interval_s() if interval_s is None else interval_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stale = False
        self._since: float | None = None

    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def tick(self) -> bool:
        """Ping once if a frame was processed less than ``max_age_s`` ago; returns whether it pinged."""
        now = self._clock()
        last = self.progress()
        if last is not None and now - last < self.max_age_s:
            if self._stale:
                logger.info("pipeline progressing again: resuming systemd watchdog pings")
                self._stale = False
            return self.notifier.watchdog()
        # Before the first frame, count from the first tick so startup is not reported as a stall.
        if self._since is None:
            self._since = now
        idle = now - (last if last is not None else self._since)
        if idle >= self.max_age_s and not self._stale:
            logger.warning("no frame processed for %.0f s: withholding systemd watchdog pings", idle)
            self._stale = True
        return False

    def start(self) -> None:
        if self.interval_s is None or not self.notifier.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.interval_s is not None  # start() only runs the thread with an interval
        interval = 0.0  # first check at once
        while not self._stop.wait(interval):
            interval = self.interval_s
            try:
                self.tick()
            except Exception:  # a broken progress() must read as "no progress", not end the thread
                logger.exception("watchdog progress check failed: withholding this ping")

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> WatchdogPinger:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
