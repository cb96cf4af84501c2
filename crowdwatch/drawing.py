"""Drawing head points and the count on a frame (used by `crowdwatch count` and the overlay sink)."""

from __future__ import annotations

import cv2
import numpy as np

POINT_COLOR = (0, 0, 255)  # BGR red
TEXT_COLOR = (255, 255, 255)
TEXT_BACKGROUND = (0, 0, 0)


def draw_points(
    image: np.ndarray, points: np.ndarray, count: int | None = None, *, label: str | None = None
) -> np.ndarray:
    """A copy of ``image`` (BGR uint8) with a dot on each (x, y) point and the count in a corner."""
    out = image.copy()
    height, width = out.shape[:2]
    radius = max(2, round(min(height, width) / 200))
    for x, y in np.asarray(points, dtype=np.float32).reshape(-1, 2):
        cv2.circle(out, (int(round(float(x))), int(round(float(y)))), radius, POINT_COLOR, -1, cv2.LINE_AA)
    if count is not None or label is not None:
        text = label if label is not None else f"count: {count}"
        scale = max(0.4, min(height, width) / 600)
        thickness = max(1, round(scale * 2))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        cv2.rectangle(out, (0, 0), (tw + 8, th + base + 8), TEXT_BACKGROUND, -1)
        cv2.putText(out, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOR, thickness, cv2.LINE_AA)
    return out
