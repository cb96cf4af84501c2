"""Merging the points found in one image at several input scales into one set (test-time scales).

Each scale's points are already distinct heads; what two scales find twice must be kept once. A point
is dropped only when a point *of another scale* with a higher score lies within its merge radius:
``min(radius, spacing / 2)``, where ``spacing`` is the distance to the nearest other point of its own
scale. Half the spacing keeps two neighbours in a dense crowd apart even when another scale sees only
one of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

from crowdwatch.model.postprocess import Prediction

#: Largest distance in source pixels at which two scales' points are taken for the same head.
MERGE_RADIUS = 12.0


def own_spacing(points: np.ndarray) -> np.ndarray:
    """Per point, the distance to the nearest other point of the same set (``inf`` when alone)."""
    if len(points) < 2:
        return np.full(len(points), math.inf)
    distance, _ = cKDTree(points.astype(np.float64)).query(points.astype(np.float64), k=2)
    return np.asarray(distance[:, 1], dtype=np.float64)


def merge_scales(predictions: Sequence[Prediction], radius: float = MERGE_RADIUS) -> Prediction:
    """One :class:`Prediction` from the same image's predictions at several scales (source pixels).

    Points are taken by descending score; a point is dropped when an already kept point of another
    scale lies within ``min(radius, spacing / 2)`` of it (see the module's note).
    """
    if not predictions:
        raise ValueError("predictions must not be empty")
    if len(predictions) == 1:
        return predictions[0]
    points = np.concatenate([p.points for p in predictions]).astype(np.float64)
    scores = np.concatenate([p.scores for p in predictions])
    scale = np.concatenate([np.full(p.count, i) for i, p in enumerate(predictions)])
    limit = np.minimum(radius, np.concatenate([own_spacing(p.points) for p in predictions]) / 2)
    keep = np.zeros(len(points), dtype=bool)
    if len(points):
        tree = cKDTree(points)
        for i in np.argsort(-scores, kind="stable"):
            near = tree.query_ball_point(points[i], r=limit[i])
            keep[i] = not any(keep[j] and scale[j] != scale[i] for j in near)
    return Prediction(points=points[keep].astype(np.float32), scores=scores[keep])
