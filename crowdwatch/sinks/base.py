"""What the worker publishes (:class:`Result`) and what every sink implements (:class:`Sink`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import numpy as np

# What tracking made of a frame (crossings, line totals, dwells, track tails): the flow's own record.
from crowdwatch.flow import FlowReading

# A zone's alert changing state on a frame: the zones' own record, handed to the sinks as it is.
from crowdwatch.zones import AlertChange as AlertEvent

__all__ = ["AlertEvent", "FlowReading", "Result", "Sink", "SinkBase"]


@dataclass(frozen=True)
class Result:
    """The model's reading of one frame, handed from the worker to the sinks.

    ``image`` is the source frame (BGR uint8), ``points`` (K, 2) float32 x, y in its pixels.
    ``captured_at`` is wall-clock capture time (``time.time()``); ``latency_s`` is capture to
    publication (monotonic clocks). ``zone_counts``/``zone_alerts`` follow the camera's zone order.
    ``smoothed_count``/``zone_smoothed`` are the counts over the camera's smoothing window (None/empty
    where nothing smooths them); ``alert_events`` are the alert transitions this frame completed.
    ``flow`` is what tracking made of the frame (None for a camera without lines or dwell zones).
    """

    camera: str
    index: int
    captured_at: float
    image: np.ndarray
    points: np.ndarray
    count: int
    latency_s: float
    zone_counts: dict[str, int] = field(default_factory=dict)
    zone_alerts: dict[str, bool] = field(default_factory=dict)
    smoothed_count: float | None = None
    zone_smoothed: dict[str, float] = field(default_factory=dict)
    alert_events: tuple[AlertEvent, ...] = ()
    flow: FlowReading | None = None

    def __post_init__(self) -> None:
        if self.points.ndim != 2 or self.points.shape[1] != 2:
            raise ValueError(f"points must have shape (K, 2), but got shape {self.points.shape}")
        if self.count < 0:
            raise ValueError(f"count must be >= 0, but got {self.count}")


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
