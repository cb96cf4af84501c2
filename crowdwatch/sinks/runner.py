"""The sink runner: results go to the sinks on a thread of their own, behind a bounded queue.

A slow disk never stalls inference: :meth:`SinkRunner.submit` never blocks, and a result that finds
the queue full is refused (the worker counts it as ``frames_dropped_total{reason="sink_overload"}``).
The sink thread calls ``write`` for each result and ``tick`` on every sink at least every
:data:`SINK_TICK_S`, so sinks flush on time when no result arrives. A failing sink is logged (at most
once a minute per sink) and never stops the others. ``None`` in the queue is the stop sentinel.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from crowdwatch.sinks.base import Result, Sink

__all__ = ["SINK_ERROR_LOG_INTERVAL_S", "SINK_TICK_S", "SinkRunner"]

logger = logging.getLogger(__name__)

#: How often the sink thread lets sinks flush when no result arrives.
SINK_TICK_S = 0.2
#: A failing sink is reported at most this often (it may fail on every row while a disk is full).
SINK_ERROR_LOG_INTERVAL_S = 60.0


class SinkRunner:
    """Feeds ``sinks`` from one thread; the caller opens and closes the sinks themselves."""

    def __init__(self, sinks: Sequence[Sink], *, queue_size: int = 32) -> None:
        self.sinks = list(sinks)
        self._queue: queue.Queue[Result | None] = queue.Queue(maxsize=queue_size)
        self._errors: dict[int, float] = {}  # id(sink) -> when its last failure was logged
        self._thread = threading.Thread(target=self._run, name="sinks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, result: Result) -> bool:
        """Queue ``result`` without blocking; False when the queue is full and the result is dropped."""
        try:
            self._queue.put_nowait(result)
        except queue.Full:
            return False
        return True

    def stop(self, deadline: float) -> bool:
        """Let the sinks take what is queued, then end the thread by ``deadline`` (``time.monotonic()``);
        True when the thread has finished."""
        if self._thread.is_alive():
            self._enqueue_stop(deadline)
            self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def _enqueue_stop(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                self._queue.put(None, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        while True:
            try:
                result: Result | None | bool = self._queue.get(timeout=SINK_TICK_S)
            except queue.Empty:
                result = False
            if result is None:
                break
            for sink in self.sinks:
                if isinstance(result, Result):
                    self._call(sink, sink.write, result)
                self._call(sink, sink.tick)

    def _call(self, sink: Sink, method: Callable[..., None], *args: object) -> None:
        try:
            method(*args)
        except Exception:
            now = time.monotonic()
            if now - self._errors.get(id(sink), -SINK_ERROR_LOG_INTERVAL_S) >= SINK_ERROR_LOG_INTERVAL_S:
                self._errors[id(sink)] = now
                logger.exception("worker: sink %s failed (reported once a minute)", type(sink).__name__)
