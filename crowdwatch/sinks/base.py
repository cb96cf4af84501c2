"""What every sink implements (:class:`Sink`), and the plumbing they share (:class:`SinkBase`). What they
receive, :class:`~crowdwatch.frames.Result`, lives beside the frame it is made from."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from crowdwatch.frames import Result

__all__ = ["Sink", "SinkBase"]


@runtime_checkable
class Sink(Protocol):
    """A destination for results. Called from one sink thread only, never from the inference thread.

    ``write`` takes one result; ``tick`` is called at least every few hundred milliseconds, with or
    without results, so a sink can flush what is due; ``close`` flushes everything and releases files.
    """

    def open(self) -> None: ...

    def write(self, result: Result) -> None: ...

    def tick(self) -> None: ...

    def close(self) -> None: ...


class SinkBase:
    """Context-manager plumbing for sinks: ``with CsvSink(...) as sink: sink.write(r)``.

    A sink that can lose rows without raising (it buffers and flushes later) counts them in
    ``lost_rows`` and says why in ``error`` until it succeeds again (``None``); the sink runner reads both.
    """

    lost_rows: int = 0
    error: str | None = None

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
