"""Localization scoring: one-to-one matching of predicted to ground-truth points within a radius."""

import numpy as np
from support.points import pts

from crowdwatch.data.scoring import match_pairs, matched_within


def test_matching_is_one_to_one_and_maximal_not_greedy():
    gt = pts((0, 0), (6, 0))
    # (3,0) is nearest to both; a greedy nearest-first matching pairs it with (0,0) and strands (-3,0).
    pred = pts((3, 0), (-3, 0))
    assert matched_within(pred, gt, 4.0) == 2
    assert matched_within(pts((0, 0)), pts((0, 0), (0, 1)), 4.0) == 1
    assert matched_within(pts(), gt, 4.0) == 0 and matched_within(pred, pts(), 4.0) == 0


def test_pairs_with_a_radius_per_ground_truth_point():
    gt = pts((0, 0), (100, 0))
    pred = pts((12, 0), (112, 0))
    assert matched_within(pred, gt, 8.0) == 0
    rows, cols = match_pairs(pred, gt, np.array([8.0, 16.0]))  # only the second head is big enough
    assert rows.tolist() == [1] and cols.tolist() == [1]
    rows, cols = match_pairs(pts((3, 0), (-3, 0)), pts((0, 0), (6, 0)), 4.0)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (1, 0)]
