"""Point-in-polygon for thousands of points at once, in numpy (no Python loop over points).

Semantics (the same as ``cv2.pointPolygonTest(...) >= 0``, which zones used before): a point is inside
when the even-odd rule says so, and a point on an edge or a vertex (within :data:`EDGE_TOLERANCE_PX`,
a thousandth of a pixel) counts as inside. Coordinates are source-frame pixels as floats: no rounding
to a pixel grid, so a point at x = 9.9 is outside a polygon whose left edge is x = 10.

Cost: one pass over the polygon's edges, each a handful of vectorised operations over all points, so
O(points x edges) work done in C. ``benchmarks/bench_polygons.py`` compares it with the per-point
``cv2.pointPolygonTest`` loop and with a rasterised-mask lookup.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EDGE_TOLERANCE_PX", "points_in_polygon", "points_in_any"]

#: A point this close to an edge (pixels) counts as on it, so float32 rounding (about 5e-4 px at
#: x = 8000) does not flip a point that lies on an edge.
EDGE_TOLERANCE_PX = 1e-3


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Boolean mask over the (K, 2) ``points``: inside the (N, 2) ``polygon`` or on its boundary."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    px, py = pts[:, 0], pts[:, 1]
    inside = np.zeros(len(pts), dtype=bool)
    on_edge = np.zeros(len(pts), dtype=bool)
    if not len(pts):
        return inside
    # Only points inside the bounding box (plus tolerance) can be inside or on the polygon.
    lo, hi = poly.min(axis=0) - EDGE_TOLERANCE_PX, poly.max(axis=0) + EDGE_TOLERANCE_PX
    box = (px >= lo[0]) & (px <= hi[0]) & (py >= lo[1]) & (py <= hi[1])
    if not box.any():
        return inside
    idx = np.flatnonzero(box)
    bx, by = px[idx], py[idx]
    crossings = np.zeros(len(idx), dtype=bool)
    edge = np.zeros(len(idx), dtype=bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        # Even-odd rule: does a ray from the point towards +x cross this edge?
        straddles = (y0 > by) != (y1 > by)
        if y1 != y0:
            x_at = x0 + (by - y0) * (x1 - x0) / (y1 - y0)
            crossings ^= straddles & (bx < x_at)
        # On the edge: collinear (cross product ~ 0) and within the segment's bounding box.
        length = float(np.hypot(x1 - x0, y1 - y0))
        cross = np.abs((x1 - x0) * (by - y0) - (y1 - y0) * (bx - x0))
        edge |= (
            (cross <= EDGE_TOLERANCE_PX * max(length, 1.0))
            & (bx >= min(x0, x1) - EDGE_TOLERANCE_PX)
            & (bx <= max(x0, x1) + EDGE_TOLERANCE_PX)
            & (by >= min(y0, y1) - EDGE_TOLERANCE_PX)
            & (by <= max(y0, y1) + EDGE_TOLERANCE_PX)
        )
    inside[idx] = crossings
    on_edge[idx] = edge
    return inside | on_edge


def points_in_any(points: np.ndarray, polygons: list[np.ndarray] | tuple[np.ndarray, ...]) -> np.ndarray:
    """Boolean mask over ``points``: inside (or on) at least one of ``polygons``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    mask = np.zeros(len(pts), dtype=bool)
    for polygon in polygons:
        mask |= points_in_polygon(pts, polygon)
    return mask
