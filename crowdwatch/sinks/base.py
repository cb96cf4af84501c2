"""What every sink implements (:class:`Sink`), and the plumbing they share (:class:`SinkBase`). What they
receive, :class:`~crowdwatch.frames.Result`, lives beside the frame it is made from.

Losses have one way in: a sink that could not deliver records calls :meth:`SinkBase.lose` with how many
and why (one of the reasons it declares in ``LOSS_REASONS``); the sink runner reports a ``write`` that
raised the same way (:data:`RAISED`). What a record is belongs to the sink: a CSV row, an MQTT message,
a result. The counts are read back with :meth:`SinkBase.losses`, every declared reason present from the
start at 0, so that telemetry can show a series per reason before the first loss.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import ClassVar, Protocol, Self, runtime_checkable

from crowdwatch.frames import Result

__all__ = ["RAISED", "Sink", "SinkBase"]

#: The reason every sink has: its ``write`` raised, so the result it was given is not recorded (counted
#: by the sink runner, not by the sink).
RAISED = "raised"

# One lock for every sink's counts: losses are rare, and a subclass needs no __init__ call for it. Held
# only to add to or copy a small dict; losses come from the sink thread and, for MQTT, from paho's and
# the publisher's threads.
_LOSS_LOCK = threading.Lock()


@runtime_checkable
class Sink(Protocol):
    """A destination for results. Called from one sink thread only, never from the inference thread.

    ``write`` takes one result; ``tick`` is called at least every few hundred milliseconds, with or
    without results, so a sink can flush what is due; ``close`` flushes everything and releases files.
    ``lose`` and ``losses`` are the one account of what the sink could not deliver (:class:`SinkBase`),
    and ``error`` says why it is failing right now (None: it is not).
    """

    error: str | None

    def open(self) -> None: ...

    def write(self, result: Result) -> None: ...

    def tick(self) -> None: ...

    def close(self) -> None: ...

    def lose(self, n: int, reason: str, error: str | None = None) -> None: ...

    def losses(self) -> dict[str, int]: ...


class SinkBase:
    """Context-manager plumbing for sinks (``with CsvSink(...) as sink: sink.write(r)``) and their account
    of losses.

    A sink that can lose records without raising (it buffers and flushes later, or drops from a bounded
    outbox) declares why in ``LOSS_REASONS`` and reports each loss with :meth:`lose`. A loss that means
    the sink is failing (a full disk) also sets ``error`` until the sink succeeds again and sets it back
    to ``None``; /healthz says ``degraded`` meanwhile. A loss without ``error`` is counted only.
    """

    #: Why this sink may lose records without raising (the ``reason`` label of its losses on /metrics).
    LOSS_REASONS: ClassVar[tuple[str, ...]] = ()
    error: str | None = None
    _lost: dict[str, int] | None = None  # made on the first loss, under _LOSS_LOCK

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        reasons = cls.LOSS_REASONS
        if RAISED in reasons or len(set(reasons)) != len(reasons):
            raise TypeError(
                f"{cls.__name__}.LOSS_REASONS {reasons}: distinct, and not {RAISED!r} (the runner's)"
            )

    def lose(self, n: int, reason: str, error: str | None = None) -> None:
        """Count ``n`` records this sink could not deliver, for ``reason`` (one of ``LOSS_REASONS``, or
        :data:`RAISED` from the sink runner); ``error``, when given, marks the sink failing. Thread-safe."""
        if reason not in self.LOSS_REASONS and reason != RAISED:
            raise ValueError(
                f"{type(self).__name__} loses records for {(*self.LOSS_REASONS, RAISED)}, not {reason!r}"
            )
        if n < 0:
            raise ValueError(f"a loss is a count of records, but got {n}")
        with _LOSS_LOCK:
            if self._lost is None:
                self._lost = {}
            self._lost[reason] = self._lost.get(reason, 0) + n
            if error is not None:
                self.error = error

    def losses(self) -> dict[str, int]:
        """Records lost since the sink was made, by reason: every declared reason, then :data:`RAISED`
        (a copy; thread-safe)."""
        with _LOSS_LOCK:
            lost = self._lost or {}
            return {reason: lost.get(reason, 0) for reason in (*self.LOSS_REASONS, RAISED)}

    def open(self) -> None:
        """Acquire files; the default has nothing to acquire."""

    def tick(self) -> None:
        """Periodic housekeeping; the default has none."""

    def close(self) -> None:
        """Release files; the default has nothing to release."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
