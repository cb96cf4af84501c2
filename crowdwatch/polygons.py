"""Point-in-polygon for thousands of points at once, in numpy (no Python loop over points).

Semantics (the same as ``cv2.pointPolygonTest(...) >= 0``, which zones used before): a point is inside
when the even-odd rule says so, and a point on an edge or a vertex (within :data:`EDGE_TOLERANCE_PX`,
a thousandth of a pixel) counts as inside. Coordinates are source-frame pixels as floats: no rounding
to a pixel grid, so a point at x = 9.9 is outside a polygon whose left edge is x = 10.

Cost: a few vectorised operations per edge over the points in the polygon's bounding box. For
polygons of many edges the points are first sorted by y, and each edge works only on the slice of
points level with it (binary search): O(points log points + points x edges a horizontal line
crosses), all of it in numpy. ``benchmarks/bench_polygons.py`` compares it with the per-point
``cv2.pointPolygonTest`` loop and with a rasterised-mask lookup.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EDGE_TOLERANCE_PX", "points_in_any", "points_in_polygon"]

#: A point this close to an edge (pixels) counts as on it, so float32 rounding (about 5e-4 px at
#: x = 8000) does not flip a point that lies on an edge.
EDGE_TOLERANCE_PX = 1e-3
#: Polygons with more edges than this sort the points by y first (see :func:`points_in_polygon`).
SLICE_ABOVE_EDGES = 8


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Boolean mask over the (K, 2) ``points``: inside the (N, 2) ``polygon`` or on its boundary."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    result = np.zeros(len(pts), dtype=bool)
    if not len(pts):
        return result
    # Only points inside the bounding box (plus tolerance) can be inside or on the polygon.
    lo, hi = poly.min(axis=0) - EDGE_TOLERANCE_PX, poly.max(axis=0) + EDGE_TOLERANCE_PX
    px, py = pts[:, 0], pts[:, 1]
    candidates = np.flatnonzero((px >= lo[0]) & (px <= hi[0]) & (py >= lo[1]) & (py <= hi[1]))
    if not len(candidates):
        return result
    # Sorted by y, the points an edge can cross or touch are one slice (found by binary search), so
    # each edge looks only at the points level with it. Sorting costs more than it saves for a few edges.
    sliced = len(poly) > SLICE_ABOVE_EDGES
    order = candidates[np.argsort(py[candidates], kind="stable")] if sliced else candidates
    xs, ys = px[order], py[order]
    crossings = np.zeros(len(order), dtype=bool)
    touching = np.zeros(len(order), dtype=bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        first, last = 0, len(order)
        if sliced:
            first = int(np.searchsorted(ys, min(y0, y1) - EDGE_TOLERANCE_PX, side="left"))
            last = int(np.searchsorted(ys, max(y0, y1) + EDGE_TOLERANCE_PX, side="right"))
        if first == last:
            continue
        sx, sy = xs[first:last], ys[first:last]
        # Even-odd rule: does a ray from the point towards +x cross this edge?
        if y1 != y0:
            straddles = (y0 > sy) != (y1 > sy)
            crossings[first:last] ^= straddles & (sx < x0 + (sy - y0) * ((x1 - x0) / (y1 - y0)))
        # On the edge: collinear (cross product ~ 0) and within the segment's bounding box.
        length = max(float(np.hypot(x1 - x0, y1 - y0)), 1.0)
        on_edge = np.abs((x1 - x0) * (sy - y0) - (y1 - y0) * (sx - x0)) <= EDGE_TOLERANCE_PX * length
        on_edge &= (sx >= min(x0, x1) - EDGE_TOLERANCE_PX) & (sx <= max(x0, x1) + EDGE_TOLERANCE_PX)
        if not sliced:
            on_edge &= (sy >= min(y0, y1) - EDGE_TOLERANCE_PX) & (sy <= max(y0, y1) + EDGE_TOLERANCE_PX)
        touching[first:last] |= on_edge
    result[order] = crossings | touching
    return result


def points_in_any(points: np.ndarray, polygons: list[np.ndarray] | tuple[np.ndarray, ...]) -> np.ndarray:
    """Boolean mask over ``points``: inside (or on) at least one of ``polygons``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    mask = np.zeros(len(pts), dtype=bool)
    for polygon in polygons:
        mask |= points_in_polygon(pts, polygon)
    return mask
