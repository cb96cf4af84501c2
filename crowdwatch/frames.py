"""The records that cross threads: a :class:`Frame` from a camera reader to the worker, and the
:class:`Result` the worker makes of it for the sinks (with the :class:`AlertChange` s it completed)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["AlertChange", "Crossing", "Direction", "Dwell", "FlowReading", "Frame", "Result"]

#: Which way a track crossed a counting line (the line's configured names say what each means).
Direction = Literal["in", "out"]


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured image of one camera.

    ``image`` is (H, W, 3) uint8 BGR, owned by the frame from then on: consumers treat it as
    read-only and draw on a copy. ``index`` counts the frames the reader kept (after sampling), from 0
    for the reader's life, across reconnects. ``captured_at`` is wall-clock ``time.time()`` taken when
    the frame came out of the stream (for CSV timestamps); ``monotonic`` is ``time.monotonic()`` at the
    same moment (for latencies and staleness, immune to clock steps).
    """

    camera: str
    image: np.ndarray
    index: int
    captured_at: float
    monotonic: float

    def __post_init__(self) -> None:
        if not isinstance(self.camera, str) or not self.camera:
            raise ValueError(f"camera must be a non-empty str, but got {self.camera!r}")
        image = self.image
        if not isinstance(image, np.ndarray):
            raise TypeError(f"image must be a np.ndarray, but got {type(image).__name__}")
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"image must have shape (H, W, 3) with H, W > 0, but got shape {image.shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"image must have dtype uint8 (BGR), but got dtype {image.dtype}")
        if isinstance(self.index, bool) or not isinstance(self.index, (int, np.integer)) or self.index < 0:
            raise ValueError(f"index must be an int >= 0, but got {self.index!r}")
        for name in ("captured_at", "monotonic"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite float, but got {value!r}")
        if self.captured_at <= 0:
            raise ValueError(f"captured_at must be a time.time() value > 0, but got {self.captured_at!r}")

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def __repr__(self) -> str:  # the default would print the whole array
        return (
            f"Frame(camera={self.camera!r}, index={self.index}, shape={self.image.shape}, "
            f"captured_at={self.captured_at:.3f})"
        )


@dataclass(frozen=True)
class AlertChange:
    """A zone's alert changing state (``raised`` or ``cleared``) on a frame captured at ``at``.

    ``count`` is the smoothed count that completed the condition, ``threshold`` the bound it was held
    against, ``since`` the capture time of the first frame of the run that met it.
    """

    zone: str
    state: Literal["raised", "cleared"]
    count: float
    threshold: float
    since: float
    at: float


@dataclass(frozen=True)
class Crossing:
    """A track crossing a line: ``direction`` is ``in`` or ``out``, ``name`` its configured name,
    ``at`` the capture time of the frame it was seen on the new side, ``point`` where it was then."""

    line: str
    direction: Direction
    name: str
    track: int
    at: float
    point: tuple[float, float]


@dataclass(frozen=True)
class Dwell:
    """A track's stay in a zone that ended: ``seconds`` from its first to its last frame inside."""

    zone: str
    track: int
    seconds: float


@dataclass(frozen=True)
class FlowReading:
    """What one frame did to a camera's flow.

    ``crossings`` this frame; ``totals`` per line: ``(in, out)`` since the start; ``dwells`` stays that
    ended this frame; ``lingering`` per zone with ``dwell_alert_s``: tracks inside for at least that
    long; ``tails`` the recent positions of each confirmed live track (for drawing); ``gap_s`` the time
    since the previous frame when it was too long to link heads across (every track ended), else 0.
    """

    crossings: tuple[Crossing, ...] = ()
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)
    dwells: tuple[Dwell, ...] = ()
    lingering: dict[str, int] = field(default_factory=dict)
    tails: tuple[tuple[tuple[float, float], ...], ...] = ()
    gap_s: float = 0.0

    def increments(self, line: str) -> tuple[int, int]:
        """This frame's (in, out) crossings of ``line``."""
        n_in = sum(1 for c in self.crossings if c.line == line and c.direction == "in")
        n_out = sum(1 for c in self.crossings if c.line == line and c.direction == "out")
        return n_in, n_out


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
    alert_events: tuple[AlertChange, ...] = ()
    flow: FlowReading | None = None

    def __post_init__(self) -> None:
        if self.points.ndim != 2 or self.points.shape[1] != 2:
            raise ValueError(f"points must have shape (K, 2), but got shape {self.points.shape}")
        if self.count < 0:
            raise ValueError(f"count must be >= 0, but got {self.count}")
