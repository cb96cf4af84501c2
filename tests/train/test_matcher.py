"""The Hungarian matcher finds the optimal one-to-one assignment and copes with empty images."""

import itertools

import numpy as np
import pytest
import torch

from crowdwatch.train.matcher import match_batch, match_cost, match_one


def brute_force_cost(cost: np.ndarray) -> float:
    """Smallest total cost over all ways to give each ground-truth column its own row."""
    rows, cols = cost.shape
    return min(
        sum(cost[perm[j], j] for j in range(cols)) for perm in itertools.permutations(range(rows), cols)
    )


@pytest.mark.parametrize("seed", range(25))
def test_matches_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    m, g = int(rng.integers(1, 7)), int(rng.integers(1, 5))
    g = min(g, m)
    points = rng.uniform(0, 32, (m, 2))
    probs = rng.uniform(0, 1, m)
    gt = rng.uniform(0, 32, (g, 2))
    pred_idx, gt_idx = match_one(points, probs, gt)
    cost = match_cost(points, probs, gt)
    assert sorted(gt_idx.tolist()) == list(range(g)), "every ground-truth point is matched"
    assert len(set(pred_idx.tolist())) == g, "no candidate is used twice"
    assert cost[pred_idx, gt_idx].sum() == pytest.approx(brute_force_cost(cost), abs=1e-9)


def test_cost_prefers_confident_candidate_at_equal_distance():
    points = np.array([[0.0, 0.0], [2.0, 0.0]])
    gt = np.array([[1.0, 0.0]])
    pred_idx, _ = match_one(points, np.array([0.2, 0.9]), gt)
    assert pred_idx.tolist() == [1]


def test_zero_ground_truth_points_match_nothing():
    pred_idx, gt_idx = match_one(np.zeros((5, 2)), np.full(5, 0.5), np.zeros((0, 2)))
    assert pred_idx.shape == (0,) and gt_idx.shape == (0,)


def test_batch_handles_mixed_empty_and_full_images():
    logits = torch.zeros(2, 6)
    points = torch.arange(24, dtype=torch.float32).reshape(2, 6, 2)
    targets = [torch.zeros(0, 2), torch.tensor([[22.5, 23.0], [12.0, 13.5]])]
    matches = match_batch(logits, points, targets)
    assert len(matches[0][0]) == 0
    assert matches[1][0].tolist() == [0, 5] and matches[1][1].tolist() == [1, 0]
