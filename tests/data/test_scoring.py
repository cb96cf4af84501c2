"""Localization scoring: one-to-one matching of predicted to ground-truth points within a radius."""

from support.points import pts

from crowdwatch.data.scoring import matched_within


def test_matching_is_one_to_one_and_maximal_not_greedy():
    gt = pts((0, 0), (6, 0))
    # (3,0) is nearest to both; a greedy nearest-first matching pairs it with (0,0) and strands (-3,0).
    pred = pts((3, 0), (-3, 0))
    assert matched_within(pred, gt, 4.0) == 2
    assert matched_within(pts((0, 0)), pts((0, 0), (0, 1)), 4.0) == 1
    assert matched_within(pts(), gt, 4.0) == 0 and matched_within(pred, pts(), 4.0) == 0
