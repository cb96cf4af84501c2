"""Tracking one camera's head points across frames: gated optimal matching and constant velocity.

Each frame's points are matched to the live tracks by the assignment that first matches as many
pairs as possible and then has the least total distance between each track's predicted position and
its point, a pair allowed only within the track's gate. The gate grows with the time since the track
was last seen: ``radius_px + max_speed_px_s * dt`` for a track with no velocity yet (any walking
direction is possible), and ``radius_px + accel_px_s * dt`` around the constant-velocity prediction
once it has one. Candidate pairs come from a k-d tree and the assignment is solved on that sparse
graph (:func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`, with a "no match" partner for
every track and every point), so a dense crowd of thousands, whose gates all overlap, costs about as
much as its candidate pairs, not a full N x M matrix.

A track unmatched on a frame keeps its last position (crossings are judged between observed positions)
and its velocity; it ends after ``max_missed`` frames in a row without a point (so it survives a missed
detection or two). A point left unmatched starts a new track, which is *confirmed* once it was matched
on ``min_hits`` frames: only confirmed tracks are handed on for line crossings and dwell, so that a
spurious point on one frame does not count.

State is kept in arrays (one row per live track), so a frame costs a few vectorised steps whatever the
number of people. Not thread-safe: one worker owns a camera's tracker.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

__all__ = ["PointTracker", "TrackStep", "TrackerSettings"]

_EMPTY_IDS = np.zeros(0, np.int64)


@dataclass(frozen=True)
class TrackerSettings:
    """How far a head may move: ``max_speed_px_s`` (a new track), ``accel_px_s`` (around the
    prediction of a moving one; None = 0.8 x ``max_speed_px_s``), plus ``radius_px`` of point jitter;
    ``max_missed`` frames a track survives unseen; ``min_hits`` matches before it is confirmed;
    ``tail`` positions kept for drawing; ``max_gap_s``: frames further apart than this are not linked (every
    track ends: heads move too far between them to tell who is who)."""

    max_speed_px_s: float = 150.0
    accel_px_s: float | None = None
    radius_px: float = 8.0
    max_missed: int = 3
    min_hits: int = 2
    tail: int = 6
    max_gap_s: float = 2.0

    def __post_init__(self) -> None:
        if self.accel_px_s is None:
            object.__setattr__(self, "accel_px_s", 0.8 * self.max_speed_px_s)
        for name in ("max_speed_px_s", "accel_px_s", "radius_px"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, but got {getattr(self, name)}")
        if not self.max_gap_s > 0:
            raise ValueError(f"max_gap_s must be > 0, but got {self.max_gap_s}")
        if self.max_missed < 0 or self.min_hits < 1 or self.tail < 1:
            raise ValueError(
                f"max_missed >= 0, min_hits >= 1, tail >= 1 expected, but got "
                f"{self.max_missed}, {self.min_hits}, {self.tail}"
            )


@dataclass(frozen=True)
class TrackStep:
    """What one frame did to the tracks (positions in source-frame pixels).

    ``ids``, ``previous``, ``positions``: the confirmed tracks matched on this frame, their previous
    observed positions and their new ones ((K,) and (K, 2)); a track confirmed on this frame has the
    position it was first seen at as its previous one (so a crossing between its first frames counts).
    ``ended``: ids of confirmed tracks that ended on this frame (missed too often, or all of them after a
    gap). ``gap_s``: the time since the previous frame when it was longer than ``max_gap_s``, else 0.
    """

    ids: np.ndarray = field(default_factory=lambda: _EMPTY_IDS)
    previous: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    ended: np.ndarray = field(default_factory=lambda: _EMPTY_IDS)
    gap_s: float = 0.0


class PointTracker:
    """Follows points across frames; :meth:`update` once per processed frame, in capture order.

    Live tracks, one row each: ``ids``, ``position`` (last observed), ``velocity`` (px/s; valid where
    ``moving``), ``seen_at`` and ``born_at`` (capture seconds), ``hits``, ``missed``, ``first`` (the
    first position), and ``tails`` (recent positions, for drawing).
    """

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self.ids = _EMPTY_IDS
        self.position = np.zeros((0, 2))
        self.velocity = np.zeros((0, 2))
        self.moving = np.zeros(0, bool)
        self.seen_at = np.zeros(0)
        self.born_at = np.zeros(0)
        self.hits = np.zeros(0, np.int64)
        self.missed = np.zeros(0, np.int64)
        self.first = np.zeros((0, 2))
        self.tails: list[deque[tuple[float, float]]] = []
        self._next_id = 1
        self._last_t: float | None = None

    @property
    def confirmed(self) -> np.ndarray:
        """Which live tracks are confirmed (a boolean mask over the rows)."""
        return self.hits >= self.settings.min_hits

    def update(self, points: np.ndarray, t: float) -> TrackStep:
        """Match ``points`` ((K, 2) x, y) captured at ``t`` to the tracks; start, confirm, end tracks."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self._last_t is not None and t < self._last_t:  # a clock stepped back: keep order sane
            t = self._last_t
        gap_s = (
            0.0 if self._last_t is None or t - self._last_t <= self.settings.max_gap_s else t - self._last_t
        )
        self._last_t = t
        s = self.settings
        gone = _EMPTY_IDS
        if gap_s:  # too long since the last frame: start again rather than link heads at random
            gone = self.ids[self.confirmed]
            self._keep(np.zeros(len(self.ids), bool))
        ti, pi = self._match(points, t)
        # matched tracks: velocity, position, counters
        new = points[pi]
        dt = t - self.seen_at[ti]
        step = dt > 0
        observed = (new[step] - self.position[ti[step]]) / dt[step, None]
        rows = ti[step]
        blend = np.where(self.moving[rows, None], 0.5 * self.velocity[rows] + 0.5 * observed, observed)
        self.velocity[rows] = blend
        self.moving[rows] = True
        previous = self.position[ti].copy()
        self.position[ti] = new
        self.seen_at[ti] = t
        self.hits[ti] += 1
        self.missed[ti] = 0
        for row, (x, y) in zip(ti.tolist(), new.tolist(), strict=True):
            self.tails[row].append((x, y))
        just = self.hits[ti] == s.min_hits
        previous[just] = self.first[ti[just]]
        report = self.hits[ti] >= s.min_hits
        moved_ids = self.ids[ti[report]]
        moved_prev, moved_new = previous[report], new[report]
        # unmatched tracks: one more miss; those past max_missed end
        unmatched = np.ones(len(self.ids), bool)
        unmatched[ti] = False
        self.missed[unmatched] += 1
        dead = self.missed > s.max_missed
        ended = np.concatenate([gone, self.ids[dead & self.confirmed]])
        self._keep(~dead)
        # unmatched points: new tracks
        fresh = np.ones(len(points), bool)
        fresh[pi] = False
        self._start(points[fresh], t)
        if s.min_hits <= 1:  # confirmed at birth: reported standing still
            born = points[fresh]
            moved_ids = np.concatenate([moved_ids, self.ids[len(self.ids) - len(born) :]])
            moved_prev = np.concatenate([moved_prev, born])
            moved_new = np.concatenate([moved_new, born])
        return TrackStep(moved_ids, moved_prev, moved_new, ended, gap_s)

    def _keep(self, keep: np.ndarray) -> None:
        if keep.all():
            return
        self.ids, self.position, self.velocity = self.ids[keep], self.position[keep], self.velocity[keep]
        self.moving, self.seen_at, self.born_at = self.moving[keep], self.seen_at[keep], self.born_at[keep]
        self.hits, self.missed, self.first = self.hits[keep], self.missed[keep], self.first[keep]
        self.tails = [tail for tail, k in zip(self.tails, keep.tolist(), strict=True) if k]

    def _start(self, points: np.ndarray, t: float) -> None:
        n = len(points)
        if not n:
            return
        self.ids = np.concatenate([self.ids, np.arange(self._next_id, self._next_id + n)])
        self._next_id += n
        self.position = np.concatenate([self.position, points])
        self.velocity = np.concatenate([self.velocity, np.zeros((n, 2))])
        self.moving = np.concatenate([self.moving, np.zeros(n, bool)])
        self.seen_at = np.concatenate([self.seen_at, np.full(n, t)])
        self.born_at = np.concatenate([self.born_at, np.full(n, t)])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.missed = np.concatenate([self.missed, np.zeros(n, np.int64)])
        self.first = np.concatenate([self.first, points])
        self.tails += [deque([(x, y)], maxlen=self.settings.tail) for x, y in points.tolist()]

    def predicted(self, t: float) -> np.ndarray:
        """Where each live track is expected at ``t`` (its last position where it has no velocity)."""
        dt = np.maximum(0.0, t - self.seen_at)
        return np.where(self.moving[:, None], self.position + self.velocity * dt[:, None], self.position)

    def gates(self, t: float) -> np.ndarray:
        s = self.settings
        dt = np.maximum(0.0, t - self.seen_at)
        accel = 0.8 * s.max_speed_px_s if s.accel_px_s is None else s.accel_px_s
        gates: np.ndarray = s.radius_px + np.where(self.moving, accel, s.max_speed_px_s) * dt
        return gates

    def _match(self, points: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(track rows, point rows) of the most pairs within the gates, then the least total distance."""
        n_t, n_p = len(self.ids), len(points)
        if not n_t or not n_p:
            return _EMPTY_IDS, _EMPTY_IDS
        predicted = self.predicted(t)
        candidates = cKDTree(points).query_ball_point(predicted, r=self.gates(t))
        counts = np.fromiter((len(c) for c in candidates), np.int64, n_t)
        if not counts.sum():
            return _EMPTY_IDS, _EMPTY_IDS
        rows = np.repeat(np.arange(n_t), counts)
        cols = np.fromiter((p for c in candidates for p in c), np.int64, int(counts.sum()))
        dist = np.linalg.norm(predicted[rows] - points[cols], axis=1)
        # A full matching always exists on this graph: track i may take its own "no match" column
        # n_p + i, point j its own "no match" row n_t + j, and the two "no match" nodes of a candidate
        # pair (i, j) may pair up when i and j do. Each real pair saves `unmatched` over leaving both
        # alone, more than any distance, so the most pairs are made, then the shortest.
        unmatched = 1.0 + 2.0 * float(dist.max())
        tiny = 1e-9  # explicit zeros would count as missing edges
        r = np.concatenate([rows, np.arange(n_t), n_t + np.arange(n_p), n_t + cols])
        c = np.concatenate([cols, n_p + np.arange(n_t), np.arange(n_p), n_p + rows])
        w = np.concatenate([dist + tiny, np.full(n_t + n_p, unmatched / 2), np.full(len(rows), tiny)])
        graph = csr_matrix((w, (r, c)), shape=(n_t + n_p, n_p + n_t))
        row_ind, col_ind = min_weight_full_bipartite_matching(graph)
        match = np.empty(n_t + n_p, np.int64)
        match[row_ind] = col_ind
        match = match[:n_t]
        real = match < n_p
        return np.flatnonzero(real), match[real].astype(np.int64)
