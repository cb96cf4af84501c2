"""The sink runner: results go to the sinks on a thread of their own, behind a bounded queue.

A slow disk never stalls inference: :meth:`SinkRunner.submit` never blocks, and a result that finds
the queue full is refused (the worker counts it as ``frames_dropped_total{reason="sink_overload"}``).
The sink thread calls ``write`` for each result and ``tick`` on every sink at least every
:data:`SINK_TICK_S`, so sinks flush on time when no result arrives. A failing sink is logged (at most
once a minute per sink, :mod:`crowdwatch.logthrottle`) and never stops the others. ``None`` in the
queue is the stop sentinel.

The runner is the one reader of what each sink lost (:meth:`SinkRunner.status`). Every loss goes
through the sink's own account (:meth:`~crowdwatch.sinks.base.SinkBase.lose`): a ``write`` that raises
loses its result, which the runner reports as ``raised``; a sink that loses records inside itself (the
CSV sink's failed flush: ``write_error``; the MQTT outbox: ``outbox_full``, ``connection_lost``,
``shutdown``) reports them with its own reasons. A sink is *failing* while it says why in ``error``
(the CSV sink from a failed flush until one reaches the disk) or while its ``write`` raises (until one
returns). Telemetry turns this into ``crowdwatch_sink_lost_total{sink, reason}``, ``crowdwatch_sink_up``,
the /healthz ``degraded`` state and the final summary.

A config reload changes the sinks through the same queue (:meth:`SinkRunner.run_in_order`): the change
runs on the sink thread after every result queued before it, so each result is written under the
layout (CSV columns, zones drawn, MQTT topics) it was made with.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crowdwatch.frames import Result
from crowdwatch.logthrottle import LogThrottle
from crowdwatch.sinks.base import RAISED, Sink

__all__ = ["SINK_TICK_S", "SinkRunner", "SinkStatus", "sink_names"]

logger = logging.getLogger(__name__)

#: How often the sink thread lets sinks flush when no result arrives.
SINK_TICK_S = 0.2


@dataclass(frozen=True)
class SinkStatus:
    """One sink at one moment: its label, the records it lost since start by reason (every reason it
    declares, and ``raised``), why it is failing (None: it is not)."""

    sink: str
    lost: dict[str, int]
    error: str | None

    @property
    def lost_total(self) -> int:
        return sum(self.lost.values())


def sink_names(sinks: Sequence[Sink]) -> list[str]:
    """Metric labels: ``CsvSink`` -> ``csv``, ``OverlaySink`` -> ``overlay`` (``-2``... for repeats)."""
    names: list[str] = []
    for sink in sinks:
        base = type(sink).__name__.removesuffix("Sink").lower() or "sink"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


@dataclass(frozen=True)
class _InOrder:
    """A change to run on the sink thread in queue order; ``done`` is set once it ran."""

    action: Callable[[], None]
    done: threading.Event


class SinkRunner:
    """Feeds ``sinks`` from one thread; the caller opens and closes the sinks themselves."""

    def __init__(self, sinks: Sequence[Sink], *, queue_size: int = 32) -> None:
        self.sinks = list(sinks)
        self.names = sink_names(self.sinks)
        self._queue: queue.Queue[Result | _InOrder | None] = queue.Queue(maxsize=queue_size)
        self._log = LogThrottle(logger)  # a failing sink may fail on every row: once a minute
        self._status_lock = threading.Lock()
        self._raised: list[str | None] = [None] * len(self.sinks)  # why the last write raised
        self._thread = threading.Thread(target=self._run, name="sinks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def status(self) -> list[SinkStatus]:
        """Each sink's losses and failing reason (thread-safe; read by /metrics, /healthz, the summary;
        also after the sinks closed: a failed last flush counts)."""
        with self._status_lock:  # a raise counted and its error, seen together
            out = []
            for i, sink in enumerate(self.sinks):
                error = sink.error if sink.error is not None else self._raised[i]
                out.append(SinkStatus(self.names[i], sink.losses(), error))
            return out

    def submit(self, result: Result) -> bool:
        """Queue ``result`` without blocking; False when the queue is full and the result is dropped."""
        try:
            self._queue.put_nowait(result)
        except queue.Full:
            return False
        return True

    def run_in_order(self, action: Callable[[], None], timeout: float = 10.0) -> threading.Event | None:
        """Queue ``action`` to run on the sink thread after every result already queued (blocking up to
        ``timeout`` for room: a change is never dropped like a result). Returns an event set once it
        has run, or None when the queue stayed full. Before :meth:`start` it runs at once, here."""
        item = _InOrder(action, threading.Event())
        if not self._thread.is_alive():
            self._run_action(item)
            return item.done
        try:
            self._queue.put(item, timeout=timeout)
        except queue.Full:
            return None
        return item.done

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
                result: Result | _InOrder | bool | None = self._queue.get(timeout=SINK_TICK_S)
            except queue.Empty:
                result = False
            if result is None:
                break
            if isinstance(result, _InOrder):
                self._run_action(result)
                continue
            for i, sink in enumerate(self.sinks):
                if isinstance(result, Result):
                    self._call(i, sink.write, result)
                self._call(i, sink.tick)

    @staticmethod
    def _run_action(item: _InOrder) -> None:
        try:
            item.action()
        except Exception:
            logger.exception("sinks: a config change failed")
        finally:
            item.done.set()

    def _call(self, i: int, method: Callable[..., None], *args: object) -> None:
        sink = self.sinks[i]
        is_write = bool(args)
        try:
            method(*args)
        except Exception as exc:
            with self._status_lock:
                if is_write:  # its result is not recorded
                    sink.lose(1, RAISED)
                self._raised[i] = f"{type(exc).__name__}: {exc}"
            self._log.log(
                self.names[i],
                logging.ERROR,
                "worker: sink %s failed (reported once a minute)",
                type(sink).__name__,
                exc_info=True,
            )
        else:
            if is_write and self._raised[i] is not None:
                with self._status_lock:
                    self._raised[i] = None
