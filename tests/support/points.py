"""Point arrays written inline in tests."""

from __future__ import annotations

import numpy as np


def pts(*xy: tuple[float, float]) -> np.ndarray:
    """A (K, 2) float32 array of the given (x, y) points; ``pts()`` is an empty (0, 2) array."""
    return np.asarray(xy, dtype=np.float32).reshape(-1, 2)
