"""Tracking one camera's head points across frames: gated optimal matching and constant velocity.

Each frame's points are matched to the live tracks by the assignment of least total distance
(:func:`scipy.optimize.linear_sum_assignment`) between each track's predicted position and the points,
a pair allowed only within the track's gate. The gate grows with the time since the track was last
seen: ``radius_px + max_speed_px_s * dt`` for a track with no velocity yet (any walking direction is
possible), and ``radius_px + accel_px_s * dt`` around the constant-velocity prediction once it has one.
Candidate pairs come from a k-d tree and the assignment is solved per connected group of tracks and
points, so thousands of points cost about as much as their groups, not a full N x M matrix.

A track unmatched on a frame keeps its last position (crossings are judged between observed positions)
and its velocity; it ends after ``max_missed`` frames in a row without a point (so it survives a missed
detection or two). A point left unmatched starts a new track, which is *confirmed* once it was matched
on ``min_hits`` frames: only confirmed tracks are handed on for line crossings and dwell, so that a
spurious point on one frame does not count.

Not thread-safe: one worker owns a camera's tracker.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = ["Track", "TrackerSettings", "PointTracker", "TrackStep"]

_FAR = 1e9  # cost of a pair outside its gate, inside a group's dense matrix


@dataclass(frozen=True)
class TrackerSettings:
    """How far a head may move: ``max_speed_px_s`` (a new track), ``accel_px_s`` (around the
    prediction of a moving one), plus ``radius_px`` of point jitter; ``max_missed`` frames a track
    survives unseen; ``min_hits`` matches before it is confirmed; ``tail`` positions kept for drawing."""

    max_speed_px_s: float = 150.0
    accel_px_s: float = 120.0
    radius_px: float = 8.0
    max_missed: int = 2
    min_hits: int = 2
    tail: int = 12

    def __post_init__(self) -> None:
        for name in ("max_speed_px_s", "accel_px_s", "radius_px"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, but got {getattr(self, name)}")
        if self.max_missed < 0 or self.min_hits < 1 or self.tail < 1:
            raise ValueError(
                f"max_missed >= 0, min_hits >= 1, tail >= 1 expected, but got "
                f"{self.max_missed}, {self.min_hits}, {self.tail}"
            )


@dataclass
class Track:
    """One head followed across frames (positions in source-frame pixels, times in capture seconds)."""

    id: int
    position: np.ndarray  # (2,) float64, last observed
    seen_at: float
    born_at: float
    velocity: np.ndarray | None = None  # px/s; None until a second observation
    hits: int = 1
    missed: int = 0
    tail: deque[tuple[float, float]] = field(default_factory=deque)

    def predict(self, t: float) -> np.ndarray:
        if self.velocity is None:
            return self.position
        return self.position + self.velocity * max(0.0, t - self.seen_at)


@dataclass(frozen=True)
class TrackStep:
    """What one frame did to the tracks.

    ``moved``: confirmed tracks matched on this frame, as (track id, previous observed position,
    new position) with positions as (x, y) tuples; a track confirmed on this frame has the position
    it was first seen at as its previous one (so a crossing between its first frames still counts).
    ``ended``: ids of confirmed tracks that ended on this frame (missed too often).
    ``active``: every confirmed track still alive (including those unseen on this frame).
    """

    moved: tuple[tuple[int, tuple[float, float], tuple[float, float]], ...] = ()
    ended: tuple[int, ...] = ()
    active: tuple[Track, ...] = ()


class PointTracker:
    """Follows points across frames; :meth:`update` once per processed frame, in capture order."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self.tracks: list[Track] = []
        self._next_id = 1
        self._first: dict[int, tuple[float, float]] = {}  # unconfirmed track id -> first position
        self._last_t: float | None = None

    def update(self, points: np.ndarray, t: float) -> TrackStep:
        """Match ``points`` ((K, 2) x, y) captured at ``t`` to the tracks; start, confirm, end tracks."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self._last_t is not None and t < self._last_t:  # a clock stepped back: keep order sane
            t = self._last_t
        self._last_t = t
        s = self.settings
        pairs = self._match(points, t)
        matched_tracks = {ti for ti, _ in pairs}
        matched_points = {pi for _, pi in pairs}
        moved: list[tuple[int, tuple[float, float], tuple[float, float]]] = []
        for ti, pi in pairs:
            track = self.tracks[ti]
            new = points[pi]
            dt = t - track.seen_at
            if dt > 0:
                observed = (new - track.position) / dt
                track.velocity = observed if track.velocity is None else 0.5 * track.velocity + 0.5 * observed
            previous = (float(track.position[0]), float(track.position[1]))
            track.position, track.seen_at = new.copy(), t
            track.hits += 1
            track.missed = 0
            track.tail.append((float(new[0]), float(new[1])))
            if track.hits == s.min_hits:
                previous = self._first.pop(track.id, previous)
            if track.hits >= s.min_hits:
                moved.append((track.id, previous, (float(new[0]), float(new[1]))))
        ended: list[int] = []
        alive: list[Track] = []
        for ti, track in enumerate(self.tracks):
            if ti not in matched_tracks:
                track.missed += 1
                if track.missed > s.max_missed:
                    if track.hits >= s.min_hits:
                        ended.append(track.id)
                    self._first.pop(track.id, None)
                    continue
            alive.append(track)
        for pi in range(len(points)):
            if pi in matched_points:
                continue
            x, y = float(points[pi][0]), float(points[pi][1])
            track = Track(self._next_id, points[pi].copy(), t, t, tail=deque([(x, y)], maxlen=s.tail))
            self._next_id += 1
            if s.min_hits <= 1:
                moved.append((track.id, (x, y), (x, y)))
            else:
                self._first[track.id] = (x, y)
            alive.append(track)
        self.tracks = alive
        confirmed = tuple(track for track in alive if track.hits >= s.min_hits)
        return TrackStep(tuple(moved), tuple(ended), confirmed)

    def _gates(self, t: float) -> np.ndarray:
        s = self.settings
        dt = np.array([max(0.0, t - track.seen_at) for track in self.tracks])
        moving = np.array([track.velocity is not None for track in self.tracks])
        gates: np.ndarray = s.radius_px + np.where(moving, s.accel_px_s, s.max_speed_px_s) * dt
        return gates

    def _match(self, points: np.ndarray, t: float) -> list[tuple[int, int]]:
        """(track index, point index) pairs of the least-distance assignment within the gates."""
        if not self.tracks or not len(points):
            return []
        predicted = np.array([track.predict(t) for track in self.tracks])
        gates = self._gates(t)
        tree = cKDTree(points)
        candidates = tree.query_ball_point(predicted, r=gates)
        rows = np.repeat(np.arange(len(predicted)), [len(c) for c in candidates])
        if not len(rows):
            return []
        cols = np.fromiter((pi for c in candidates for pi in c), dtype=np.int64, count=len(rows))
        costs = np.linalg.norm(predicted[rows] - points[cols], axis=1)
        n_t, n_p = len(predicted), len(points)
        # One graph of tracks (0..n_t-1) and points (n_t..): each group is solved on its own.
        graph = coo_matrix((np.ones(len(rows)), (rows, cols + n_t)), shape=(n_t + n_p, n_t + n_p))
        _, labels = connected_components(graph, directed=False)
        pairs: list[tuple[int, int]] = []
        group_of_pair = labels[rows]
        order = np.argsort(group_of_pair, kind="stable")
        bounds = np.flatnonzero(np.diff(group_of_pair[order])) + 1
        for chunk in np.split(order, bounds):
            r, c, cost = rows[chunk], cols[chunk], costs[chunk]
            if len(chunk) == 1:
                pairs.append((int(r[0]), int(c[0])))
                continue
            ut, ri = np.unique(r, return_inverse=True)
            up, ci = np.unique(c, return_inverse=True)
            dense = np.full((len(ut), len(up)), _FAR)
            dense[ri, ci] = cost
            a, b = linear_sum_assignment(dense)
            for i, j in zip(a, b, strict=True):
                if dense[i, j] < _FAR:
                    pairs.append((int(ut[i]), int(up[j])))
        return pairs
