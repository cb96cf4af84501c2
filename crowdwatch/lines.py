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

import numpy as np

from crowdwatch.frames import Crossing, Direction

__all__ = ["CountingLine", "Crossing", "LineCounter"]


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


class LineCounter:
    """Crossings of one line by a camera's tracks, and their totals since the start."""

    def __init__(self, line: CountingLine) -> None:
        self.line = line
        self.totals: dict[Direction, int] = {"in": 0, "out": 0}
        # track -> (side, x, y): its last side beyond the band, and where it last was on it
        self._state: dict[int, tuple[int, float, float]] = {}

    def step(
        self, track: int, previous: tuple[float, float], position: tuple[float, float], at: float
    ) -> Crossing | None:
        """Advance ``track`` from ``previous`` to ``position`` (seen at ``at``); the crossing, if any."""
        crossings = self.advance(np.array([track]), np.array([previous]), np.array([position]), at)
        return crossings[0] if crossings else None

    def advance(
        self, tracks: np.ndarray, previous: np.ndarray, positions: np.ndarray, at: float
    ) -> list[Crossing]:
        """Advance each of ``tracks`` from its ``previous`` to its ``positions`` row; the crossings."""
        if not len(tracks):
            return []
        line = self.line
        sides_new = self._sides(positions)
        sides_prev = self._sides(previous)
        state = self._state
        crossings = []
        for k, (track, new_side) in enumerate(zip(tracks.tolist(), sides_new.tolist(), strict=True)):
            known = state.get(track)
            if known is None and sides_prev[k]:
                known = (int(sides_prev[k]), float(previous[k, 0]), float(previous[k, 1]))
                state[track] = known
            if new_side == 0:
                continue
            x, y = float(positions[k, 0]), float(positions[k, 1])
            if known is not None and known[0] != new_side and line.cuts((known[1], known[2]), (x, y)):
                direction: Direction = "in" if known[0] < 0 else "out"
                self.totals[direction] += 1
                crossings.append(
                    Crossing(line.id, direction, line.direction_name(direction), track, at, (x, y))
                )
            state[track] = (new_side, x, y)
        return crossings

    def _sides(self, points: np.ndarray) -> np.ndarray:
        (ax, ay), (bx, by) = self.line.a, self.line.b
        offset = ((bx - ax) * (points[:, 1] - ay) - (by - ay) * (points[:, 0] - ax)) / self.line.length
        band = self.line.band_px
        return np.where(offset < -band, -1, np.where(offset > band, 1, 0))

    def forget(self, tracks: np.ndarray) -> None:
        for track in np.asarray(tracks).reshape(-1).tolist():
            self._state.pop(track, None)
