"""One policy for log lines that would repeat while a fault lasts (a full disk, a broker that is away).

:class:`LogThrottle` logs the first occurrence of a fault at once, then at most once every
:data:`REPEAT_LOG_S` per key, saying how many occurrences it held back since the last line. A key
that is :meth:`~LogThrottle.reset` (the fault is over) logs its next occurrence at once again.
The sinks (CSV, MQTT) and the sink runner share it, so an operator sees the same rhythm everywhere.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

__all__ = ["REPEAT_LOG_S", "LogThrottle"]

#: A fault that lasts is reported again at most this often.
REPEAT_LOG_S = 60.0


class LogThrottle:
    """Rate-limits ``logger``'s lines per key (thread-safe); ``clock`` is injectable for tests."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = REPEAT_LOG_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, key: str, level: int, message: str, *args: object, exc_info: bool = False) -> bool:
        """Log ``message % args`` unless ``key`` was logged within the interval; True if it was logged.

        A line after held-back ones ends with ``(N more since the last report)``."""
        now = self._clock()
        with self._lock:
            if now - self._last.get(key, -math.inf) < self.interval_s:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            message += f" ({held} more since the last report)"
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True

    def reset(self, key: str) -> None:
        """The fault behind ``key`` is over: its next occurrence is logged at once."""
        with self._lock:
            self._last.pop(key, None)
            self._held.pop(key, None)
