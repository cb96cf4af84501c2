"""Counting and localization scores shared by training validation and ``crowdwatch evaluate``.

Count: MAE and RMSE of per-image counts (RMSE is what crowd-counting papers call "MSE").
Localization: predicted and ground-truth points are matched one-to-one within a distance; a match is
a true positive. The matching maximises the number of pairs within the distance (ties broken by the
smallest total distance). Precision, recall and F1 are micro-averaged: TP, predictions and ground
truth are summed over images first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment


def dataset_groups(datasets: Sequence[str]) -> dict[str, list[int]]:
    """Indices per dataset name (sorted), then "all": how every report here is broken down."""
    groups: dict[str, list[int]] = {name: [] for name in sorted(set(datasets))}
    for i, name in enumerate(datasets):
        groups[name].append(i)
    groups["all"] = list(range(len(datasets)))
    return groups


def count_errors(predicted: Sequence[float], truth: Sequence[float]) -> dict[str, float]:
    """MAE and RMSE of counts; NaN for empty input."""
    if len(predicted) != len(truth):
        raise ValueError(f"need equal lengths, but got {len(predicted)} predictions and {len(truth)} truths")
    if not predicted:
        return {"mae": math.nan, "rmse": math.nan}
    err = np.asarray(predicted, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean()))}


def matched_within(pred: np.ndarray, gt: np.ndarray, radius: float) -> int:
    """Largest number of one-to-one pairs (pred, gt) at Euclidean distance <= radius."""
    if len(pred) == 0 or len(gt) == 0:
        return 0
    pred, gt = pred.astype(np.float64), gt.astype(np.float64)
    distance = np.linalg.norm(pred[:, None, :] - gt[None, :, :], axis=-1)
    close = distance <= radius
    rows_used = close.any(axis=1)
    cols_used = close.any(axis=0)
    if not rows_used.any():
        return 0
    sub = distance[np.ix_(rows_used, cols_used)]
    # Pairs beyond the radius cost more than any set of pairs within it, so the optimum first
    # maximises the number of close pairs.
    big = radius * (min(sub.shape) + 1) + 1.0
    cost = np.where(sub <= radius, sub, big)
    rows, cols = linear_sum_assignment(cost)
    return int((sub[rows, cols] <= radius).sum())


def prf(tp: int, n_pred: int, n_gt: int) -> dict[str, float]:
    """Precision, recall, F1; precision of no predictions is 1 when there is no truth either, else 0."""
    precision = tp / n_pred if n_pred else (1.0 if n_gt == 0 else 0.0)
    recall = tp / n_gt if n_gt else (1.0 if n_pred == 0 else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
