"""Counting lines: which tracks cross a camera's line segment, and from which side.

A line runs from point A to point B (source-frame pixels). Seen on the image (y pointing down),
walking from A to B, the *left* side is where tracks counted ``in`` come from, and the *right* side
where tracks counted ``out`` come from: a track is ``in`` when it passes from the left of A->B to its
right. For a line drawn left to right, ``in`` is downwards on the image; swap A and B to swap the
directions. The overlay draws an arrow pointing the ``in`` way.

Hysteresis: a band of ``band_px`` on each side of the line belongs to neither side. A track's side
changes only when it reaches the far side beyond the band, so a head that wobbles on the line (or
whose point jitters by a few pixels) counts once or not at all, never once per wobble. A change of
side counts only when the way from the last position on the old side to the first on the new one
cuts the segment between A and B (not the line's extension beyond its ends).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["Crossing", "CountingLine", "LineCounter"]

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class CountingLine:
    """One line: its ``id``, end points ``a`` and ``b``, the names of its two directions, its band."""

    id: str
    a: tuple[float, float]
    b: tuple[float, float]
    in_name: str = "in"
    out_name: str = "out"
    band_px: float = 4.0

    def __post_init__(self) -> None:
        if self.length <= 0:
            raise ValueError(f"line {self.id!r}: its two points must differ, but both are {self.a}")
        if self.in_name == self.out_name:
            raise ValueError(f"line {self.id!r}: in and out must differ, but both are {self.in_name!r}")
        if not self.band_px >= 0:
            raise ValueError(f"line {self.id!r}: band_px must be >= 0, but got {self.band_px}")

    @property
    def length(self) -> float:
        return math.hypot(self.b[0] - self.a[0], self.b[1] - self.a[1])

    def offset(self, p: tuple[float, float]) -> float:
        """Signed distance of ``p`` from the line in pixels: < 0 on the left (``in`` side), > 0 right."""
        (ax, ay), (bx, by) = self.a, self.b
        return ((bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax)) / self.length

    def side(self, p: tuple[float, float]) -> int:
        """-1 (left, where ``in`` comes from), +1 (right), 0 inside the band."""
        d = self.offset(p)
        return -1 if d < -self.band_px else 1 if d > self.band_px else 0

    def cuts(self, p: tuple[float, float], q: tuple[float, float]) -> bool:
        """Whether the way from ``p`` to ``q`` (on opposite sides) meets the segment A-B."""
        dp, dq = self.offset(p), self.offset(q)
        if dp == dq:
            return False
        f = dp / (dp - dq)
        x, y = p[0] + f * (q[0] - p[0]), p[1] + f * (q[1] - p[1])
        (ax, ay), (bx, by) = self.a, self.b
        along = ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / (self.length**2)
        return 0.0 <= along <= 1.0

    def direction_name(self, direction: Direction) -> str:
        return self.in_name if direction == "in" else self.out_name


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


class LineCounter:
    """Crossings of one line by a camera's tracks, and their totals since the start."""

    def __init__(self, line: CountingLine) -> None:
        self.line = line
        self.totals: dict[Direction, int] = {"in": 0, "out": 0}
        self._state: dict[int, tuple[int, tuple[float, float]]] = {}  # track -> (side, where last on it)

    def step(
        self, track: int, previous: tuple[float, float], position: tuple[float, float], at: float
    ) -> Crossing | None:
        """Advance ``track`` from ``previous`` to ``position`` (seen at ``at``); the crossing, if any."""
        line = self.line
        state = self._state.get(track)
        if state is None:
            side = line.side(previous)
            if side:
                state = (side, previous)
        new_side = line.side(position)
        if new_side == 0:
            if state is not None:
                self._state[track] = state
            return None
        crossing = None
        if state is not None and state[0] != new_side and line.cuts(state[1], position):
            direction: Direction = "in" if state[0] < 0 else "out"
            self.totals[direction] += 1
            crossing = Crossing(line.id, direction, line.direction_name(direction), track, at, position)
        self._state[track] = (new_side, position)
        return crossing

    def forget(self, track: int) -> None:
        self._state.pop(track, None)
