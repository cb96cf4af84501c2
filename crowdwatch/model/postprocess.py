"""Decoding P2PNet outputs into points in source-image pixels, one result per image.

Decoding is numpy work, the same for every backend: torch outputs are read back to the CPU first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crowdwatch.model.preprocess import InputGeometry


@dataclass(frozen=True)
class Prediction:
    """People found in one image.

    ``points``: (K, 2) float32 (x, y) in source-image pixels (x = column); ``scores``: (K,) float32
    in (threshold, 1].
    """

    points: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        if self.points.ndim != 2 or self.points.shape[1] != 2:
            raise ValueError(f"points must have shape (K, 2), but got {self.points.shape}")
        if self.scores.shape != (self.points.shape[0],):
            raise ValueError(f"scores must have shape ({self.points.shape[0]},), but got {self.scores.shape}")

    @property
    def count(self) -> int:
        return int(self.points.shape[0])


def as_float32(values: Any) -> np.ndarray:
    """A backend's output as a float32 numpy array: a numpy array as it is, a torch tensor (any device,
    any float dtype) read back to the CPU."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float32, copy=False)
    return np.asarray(values.detach().float().cpu().numpy(), dtype=np.float32)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in float32; exp overflows to inf for very negative x, giving 0 as it should."""
    with np.errstate(over="ignore"):
        out: np.ndarray = 1.0 / (1.0 + np.exp(-logits))
    return out


def decode(
    logits: Any,
    points: Any,
    geometries: Sequence[InputGeometry],
    threshold: float,
) -> list[Prediction]:
    """Keep candidates with sigmoid(logit) > threshold and map them to source pixels.

    Args:
        logits: (B, M) candidate logits (numpy, or a torch tensor on any device).
        points: (B, M, 2) candidate (x, y) in network-input pixels.
        geometries: one per image, from the preprocessor.
        threshold: score threshold in [0, 1).

    Candidates whose point falls in the padding (outside the resized image) are dropped: no head
    lies outside the picture. Points are then divided by the resize scale
    (:meth:`InputGeometry.to_source`).
    """
    if logits.shape[0] != len(geometries):
        raise ValueError(f"got {logits.shape[0]} outputs for {len(geometries)} images")
    scores = sigmoid(as_float32(logits))
    xy_all = as_float32(points)
    results = []
    for i, geo in enumerate(geometries):
        h, w = geo.resized_hw
        xy = xy_all[i]
        keep = (scores[i] > threshold) & (xy[:, 0] >= 0) & (xy[:, 0] <= w) & (xy[:, 1] >= 0) & (xy[:, 1] <= h)
        results.append(Prediction(points=geo.to_source(xy[keep]), scores=scores[i][keep]))
    return results
