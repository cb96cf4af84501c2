"""P2PNet's training loss: weighted classification over all candidates plus the point loss.

Classification: binary cross-entropy on each candidate's single logit; matched candidates are
"person" with weight 1, all others "background" with weight ``BACKGROUND_WEIGHT``; the weighted sum is
divided by the sum of the weights (what the published weighted cross-entropy does).

Points: squared Euclidean distance between each matched candidate and its ground-truth point, summed
and divided by the number of ground-truth points in the batch (at least 1), times ``POINT_COEF``.
The published code computes this term under one key and weights it under another, so it never reaches
the total and the regression head never trains; here it is part of ``total``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from crowdwatch.train.matcher import Match

BACKGROUND_WEIGHT = 0.5
POINT_COEF = 2e-4


def p2p_loss(
    logits: torch.Tensor,
    points: torch.Tensor,
    targets: Sequence[torch.Tensor],
    matches: Sequence[Match],
    *,
    background_weight: float = BACKGROUND_WEIGHT,
    point_coef: float = POINT_COEF,
) -> dict[str, torch.Tensor]:
    """Loss for logits (B, M), points (B, M, 2), B targets (G_b, 2) and their matches.

    Returns "total", "cls" and "point" (the point term before its coefficient).
    """
    labels = torch.zeros_like(logits, dtype=torch.float32)
    weights = torch.full_like(labels, background_weight)
    pred_chunks, gt_chunks = [], []
    for b, (pred_idx, gt_idx) in enumerate(matches):
        if len(pred_idx) == 0:
            continue
        pred_t = torch.as_tensor(pred_idx, device=logits.device)
        labels[b, pred_t] = 1.0
        weights[b, pred_t] = 1.0
        pred_chunks.append(points[b, pred_t])
        gt = targets[b].to(points.device, torch.float32)
        gt_chunks.append(gt[torch.as_tensor(gt_idx, device=points.device)])
    per_candidate = F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    cls = (weights * per_candidate).sum() / weights.sum()
    num_gt = max(sum(len(t) for t in targets), 1)
    if pred_chunks:
        diff = torch.cat(pred_chunks).float() - torch.cat(gt_chunks)
        point = diff.pow(2).sum() / num_gt
    else:
        point = points.sum() * 0.0  # keeps the graph (and a zero gradient) when no image has points
    return {"total": cls + point_coef * point, "cls": cls, "point": point}
