"""One-to-one Hungarian matching of ground-truth points to candidate points (P2PNet's matcher).

Cost of pairing candidate i with ground-truth point j:
``POINT_COST * ||p_i - g_j|| - CLASS_COST * sigmoid(logit_i)``, minimised with
:func:`scipy.optimize.linear_sum_assignment`. Every ground-truth point gets its own candidate (there
are far more candidates than points); an image without points matches nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

#: Weights of the matching cost (published values).
POINT_COST = 0.05
CLASS_COST = 1.0

Match = tuple[np.ndarray, np.ndarray]


def match_cost(points: np.ndarray, probs: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(M, G) cost matrix for M candidates (points (M, 2), probs (M,)) and G ground-truth points."""
    distance = np.linalg.norm(points[:, None, :] - gt[None, :, :], axis=-1)
    cost: np.ndarray = POINT_COST * distance - CLASS_COST * probs[:, None]
    return cost


def match_one(points: np.ndarray, probs: np.ndarray, gt: np.ndarray) -> Match:
    """Return (candidate indices, ground-truth indices) of the optimal one-to-one assignment."""
    if len(gt) == 0 or len(points) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    rows, cols = linear_sum_assignment(
        match_cost(points.astype(np.float64), probs.astype(np.float64), gt.astype(np.float64))
    )
    return rows.astype(np.int64), cols.astype(np.int64)


@torch.no_grad()
def match_batch(logits: torch.Tensor, points: torch.Tensor, targets: Sequence[torch.Tensor]) -> list[Match]:
    """Match each image of a batch: logits (B, M), points (B, M, 2), targets B tensors of (G_b, 2)."""
    probs = logits.detach().float().sigmoid().cpu().numpy()
    cand = points.detach().float().cpu().numpy()
    return [match_one(cand[b], probs[b], targets[b].cpu().numpy()) for b in range(len(targets))]
