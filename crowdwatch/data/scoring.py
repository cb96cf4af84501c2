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


def match_pairs(
    pred: np.ndarray, gt: np.ndarray, radius: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one pairs of :func:`matched_within`: indices ``(pred_idx, gt_idx)``, each (T,) int.

    ``radius`` is one distance for every pair, or one per ground-truth point (shape ``(len(gt),)``):
    a prediction then matches ground-truth point j within ``radius[j]``.
    """
    none = np.zeros(0, dtype=np.intp)
    if len(pred) == 0 or len(gt) == 0:
        return none, none
    limit = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(gt),))
    pred, gt = pred.astype(np.float64), gt.astype(np.float64)
    distance = np.linalg.norm(pred[:, None, :] - gt[None, :, :], axis=-1)
    close = distance <= limit[None, :]
    rows_used = np.flatnonzero(close.any(axis=1))
    cols_used = np.flatnonzero(close.any(axis=0))
    if len(rows_used) == 0:
        return none, none
    sub = distance[np.ix_(rows_used, cols_used)]
    sub_close = close[np.ix_(rows_used, cols_used)]
    # Pairs beyond the radius cost more than any set of pairs within it, so the optimum first
    # maximises the number of close pairs.
    big = float(limit[cols_used].max()) * (min(sub.shape) + 1) + 1.0
    rows, cols = linear_sum_assignment(np.where(sub_close, sub, big))
    ok = sub_close[rows, cols]
    return rows_used[rows[ok]], cols_used[cols[ok]]


def matched_within(pred: np.ndarray, gt: np.ndarray, radius: float | np.ndarray) -> int:
    """Largest number of one-to-one pairs (pred, gt) at Euclidean distance <= radius (see
    :func:`match_pairs` for a radius per ground-truth point)."""
    return len(match_pairs(pred, gt, radius)[0])


def prf(tp: int, n_pred: int, n_gt: int) -> dict[str, float]:
    """Precision, recall, F1; precision of no predictions is 1 when there is no truth either, else 0."""
    precision = tp / n_pred if n_pred else (1.0 if n_gt == 0 else 0.0)
    recall = tp / n_gt if n_gt else (1.0 if n_pred == 0 else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
