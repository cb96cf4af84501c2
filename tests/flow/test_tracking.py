"""The point tracker: identities kept through motion, missed detections and crowds; tracks end and
confirm as documented; the grouped assignment equals one assignment over everything."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from crowdwatch.tracking import PointTracker, TrackerSettings


def walk(tracker: PointTracker, frames: list[np.ndarray], fps: float) -> list[dict[int, tuple[float, float]]]:
    """Each frame's confirmed tracks seen on it: id -> position."""
    out = []
    for i, points in enumerate(frames):
        tracker.update(points, i / fps)
        here = tracker.confirmed & (tracker.seen_at == i / fps)
        out.append(
            {
                int(k): (float(x), float(y))
                for k, (x, y) in zip(tracker.ids[here], tracker.position[here], strict=True)
            }
        )
    return out


def test_one_walker_keeps_its_id_and_is_confirmed_on_its_second_frame() -> None:
    tracker = PointTracker()
    steps = [tracker.update(np.array([[10.0 + 100 * i / 5, 50.0]]), i / 5) for i in range(10)]
    assert len(steps[0].ids) == 0  # one sighting: not confirmed yet
    assert steps[1].ids.tolist() == [1]  # confirmed: its first position is its previous
    assert steps[1].previous.tolist() == [[10.0, 50.0]] and steps[1].positions.tolist() == [[30.0, 50.0]]
    assert all(step.ids.tolist() == [1] for step in steps[1:]) and tracker.ids.tolist() == [1]


def test_a_track_survives_max_missed_frames_then_ends() -> None:
    tracker = PointTracker(TrackerSettings(max_missed=2))
    points = [np.array([[100.0 + 20 * i, 50.0]]) for i in range(8)]
    for i in (0, 1, 2):
        tracker.update(points[i], i / 5)
    tracker.update(np.zeros((0, 2)), 3 / 5)
    tracker.update(np.zeros((0, 2)), 4 / 5)
    step = tracker.update(points[5], 5 / 5)  # two frames missed, then seen where it walked to
    assert step.ids.tolist() == [1]
    assert step.previous.tolist() == [[140.0, 50.0]]  # judged from its last observed position
    for i in (6, 7, 8):
        step = tracker.update(np.zeros((0, 2)), i / 5)
    assert step.ended.tolist() == [1] and len(tracker.ids) == 0


def test_an_unconfirmed_point_never_reports() -> None:
    tracker = PointTracker(TrackerSettings(min_hits=2, max_missed=0))
    step = tracker.update(np.array([[5.0, 5.0]]), 0.0)
    step2 = tracker.update(np.zeros((0, 2)), 0.2)
    assert len(step.ids) == len(step2.ids) == len(step2.ended) == len(tracker.ids) == 0


def test_two_people_passing_close_keep_their_ids() -> None:
    # Opposite directions on parallel paths 12 px apart, 120 px/s, 5 frames/s: 24 px per frame each.
    frames = [np.array([[20.0 + 24 * i, 100.0], [260.0 - 24 * i, 112.0]]) for i in range(11)]
    seen = walk(PointTracker(), frames, 5.0)
    first = {pos[0] < 150: tid for tid, pos in seen[1].items()}
    for frame in seen[1:]:
        for tid, (_x, y) in frame.items():
            assert (tid == first[True]) == (y == 100.0)  # the id on the upper path is always the same one


@pytest.mark.parametrize("n", [30, 300])
def test_a_moving_crowd_keeps_every_id(n: int) -> None:
    # A crowd on a grid 40 px apart flowing one way (each +-30 degrees off it) at 80-100 px/s, sampled
    # at 5 frames/s: up to 20 px per frame, half the spacing: every id must hold on every frame.
    rng = np.random.default_rng(n)
    side = int(np.ceil(np.sqrt(n)))
    start = np.stack(np.meshgrid(np.arange(side) * 40.0, np.arange(side) * 40.0), -1).reshape(-1, 2)[:n]
    angle = 0.7 + rng.uniform(-np.pi / 6, np.pi / 6, n)
    velocity = rng.uniform(80, 100, (n, 1)) * np.stack([np.cos(angle), np.sin(angle)], 1)
    frames = [start + velocity * (i / 5) for i in range(6)]
    tracker = PointTracker()
    ids = []
    for i, points in enumerate(frames):
        tracker.update(points, i / 5)
        by_place = {tuple(p): int(k) for k, p in zip(tracker.ids, tracker.position.tolist(), strict=True)}
        ids.append([by_place[tuple(p)] for p in points])
    assert all(row == ids[0] for row in ids)


def test_sparse_assignment_equals_one_dense_assignment() -> None:
    rng = np.random.default_rng(3)
    tracker = PointTracker(TrackerSettings(max_speed_px_s=100.0, radius_px=0.0, min_hits=1))
    before = rng.uniform(0, 400, (80, 2))
    tracker.update(before, 0.0)
    after = before + rng.normal(0, 6, before.shape)
    rng.shuffle(after)
    rows, cols = tracker._match(after, 0.2)  # gates of 20 px
    pairs = list(zip(rows.tolist(), cols.tolist(), strict=True))
    cost = np.linalg.norm(before[:, None] - after[None], axis=2)
    cost[cost > 20] = 1e9
    dense_rows, dense_cols = linear_sum_assignment(cost)
    expected = {(int(r), int(c)) for r, c in zip(dense_rows, dense_cols, strict=True) if cost[r, c] < 1e9}
    assert set(pairs) == expected
    assert abs(sum(cost[r, c] for r, c in pairs) - sum(cost[r, c] for r, c in expected)) < 1e-9


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_speed_px_s"):
        TrackerSettings(max_speed_px_s=-1)
    with pytest.raises(ValueError, match="min_hits"):
        TrackerSettings(min_hits=0)


def test_frames_too_far_apart_are_not_linked() -> None:
    tracker = PointTracker(TrackerSettings(max_gap_s=2.0))
    for i in range(3):
        tracker.update(np.array([[100.0 + 20 * i, 50.0]]), i * 0.5)
    step = tracker.update(np.array([[160.0, 50.0]]), 1.0 + 2.5)  # 2.5 s later: beyond max_gap_s
    assert step.gap_s == 2.5 and step.ended.tolist() == [1] and len(step.ids) == 0
    assert tracker.ids.tolist() == [2]  # a new, unconfirmed track where the point is
    step = tracker.update(np.array([[170.0, 50.0]]), 4.0)
    assert step.gap_s == 0 and step.ids.tolist() == [2]
