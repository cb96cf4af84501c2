"""Merging the points of several test-time scales: each head once, neighbours in a crowd kept apart."""

import numpy as np
import pytest
from support.points import pts

from crowdwatch.model.multiscale import merge_scales, own_spacing
from crowdwatch.model.postprocess import Prediction


def prediction(*xy_score):
    return Prediction(
        points=pts(*[(x, y) for x, y, _ in xy_score]),
        scores=np.asarray([s for _, _, s in xy_score], dtype=np.float32).reshape(-1),
    )


def test_a_head_found_at_two_scales_is_kept_once_with_the_higher_score():
    full = prediction((100, 100, 0.9), (300, 100, 0.6))
    half = prediction((103, 101, 0.7), (302, 98, 0.8), (500, 400, 0.95))  # the last: only this scale
    merged = merge_scales([full, half], radius=12.0)
    assert sorted(map(tuple, merged.points.tolist())) == [(100, 100), (302, 98), (500, 400)]
    assert sorted(merged.scores.tolist()) == pytest.approx([0.8, 0.9, 0.95])


def test_neighbours_of_one_scale_are_never_merged_and_a_dense_crowd_keeps_its_heads():
    # five heads 4 px apart at one scale; the other scale sees one of them 1 px off and one new head
    crowd = prediction(*[(10 + 4 * i, 50, 0.9) for i in range(5)])
    other = prediction((19, 50, 0.95), (60, 50, 0.9))
    merged = merge_scales([crowd, other], radius=12.0)
    # (19, 50) replaces (18, 50) only: within half the crowd's spacing (2 px) of nothing else
    assert merged.count == 6
    assert (19, 50) in map(tuple, merged.points.tolist()) and (18, 50) not in map(
        tuple, merged.points.tolist()
    )
    assert own_spacing(pts((0, 0), (3, 4), (30, 40))).tolist() == [5.0, 5.0, 45.0]


def test_one_scale_or_empty_scales_pass_through():
    one = prediction((1, 2, 0.7))
    assert merge_scales([one]) is one
    assert merge_scales([prediction(), prediction()]).count == 0
    with pytest.raises(ValueError, match="must not be empty"):
        merge_scales([])
