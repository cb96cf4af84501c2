"""Point-in-polygon for thousands of points at once, in numpy (no Python loop over points).

Semantics (the same as ``cv2.pointPolygonTest(...) >= 0``, which zones used before): a point is inside
when the even-odd rule says so, and a point on an edge or a vertex (within :data:`EDGE_TOLERANCE_PX`,
a thousandth of a pixel) counts as inside. Coordinates are source-frame pixels as floats: no rounding
to a pixel grid, so a point at x = 9.9 is outside a polygon whose left edge is x = 10.

Two ways, same answers:

- :func:`points_in_polygon`, the exact test: a few vectorised operations per edge over the points in
  the polygon's bounding box (for polygons of many edges the points are first sorted by y, and each
  edge works only on the slice of points level with it);
- :class:`PolygonMask`, what zones and exclusions use per frame: the polygon rasterised once (its
  bounding box, one byte per pixel) with a band of :data:`BAND_PX` pixels drawn along its edges. A
  point is looked up at its nearest pixel: a pixel clear of the band is inside or outside for every
  point that rounds to it, and only the few points whose pixel is in the band go through the exact
  test. So the cost is one lookup per point whatever the number of edges.

``benchmarks/bench_polygons.py`` compares them with the per-point ``cv2.pointPolygonTest`` loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import cv2
import numpy as np

__all__ = ["EDGE_TOLERANCE_PX", "PolygonMask", "points_in_any", "points_in_polygon"]

#: A point this close to an edge (pixels) counts as on it, so float32 rounding (about 5e-4 px at
#: x = 8000) does not flip a point that lies on an edge.
EDGE_TOLERANCE_PX = 1e-3
#: Polygons with more edges than this sort the points by y first (see :func:`points_in_polygon`).
SLICE_ABOVE_EDGES = 8
#: Up to this many (point, edge) pairs are tested all at once (a (points, edges) array) rather than edge
#: by edge: cheaper for the few points next to an edge that a :class:`PolygonMask` sends to the exact test.
BROADCAST_MAX = 16_384
#: Width of the band drawn along the edges of a :class:`PolygonMask` (pixels): a pixel whose centre is
#: this far from every edge is classified by the raster, and a point is at most 0.71 px from its pixel's
#: centre, so the raster is right for every point outside the band, with room to spare.
BAND_PX = 5
#: Largest bounding box (pixels) a :class:`PolygonMask` rasterises; larger polygons use the exact test.
MAX_MASK_PIXELS = 4096 * 4096
_OUTSIDE, _INSIDE, _BAND = 0, 1, 2
_SUBPIXEL_BITS = 8  # cv2 drawing with fractional vertex coordinates (shift=8: 1/256 px)


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
    if len(candidates) * len(poly) <= BROADCAST_MAX:
        result[candidates] = _few_points_in_polygon(px[candidates], py[candidates], poly)
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


def _few_points_in_polygon(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """:func:`points_in_polygon` for few points: every (point, edge) pair at once, no loop over edges."""
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    dx, dy = x1 - x0, y1 - y0
    level = dy != 0
    inverse_slope = np.divide(dx, dy, out=np.zeros_like(dx), where=level)
    px, py = px[:, None], py[:, None]  # (K, 1) against (N,) edges: (K, N) pairs
    straddles = ((y0 > py) != (y1 > py)) & level
    crossings = np.count_nonzero(straddles & (px < x0 + (py - y0) * inverse_slope), axis=1) % 2 == 1
    length = np.maximum(np.hypot(dx, dy), 1.0)
    touching = (
        (np.abs(dx * (py - y0) - dy * (px - x0)) <= EDGE_TOLERANCE_PX * length)
        & (px >= np.minimum(x0, x1) - EDGE_TOLERANCE_PX)
        & (px <= np.maximum(x0, x1) + EDGE_TOLERANCE_PX)
        & (py >= np.minimum(y0, y1) - EDGE_TOLERANCE_PX)
        & (py <= np.maximum(y0, y1) + EDGE_TOLERANCE_PX)
    ).any(axis=1)
    inside: np.ndarray = crossings | touching
    return inside


class PolygonMask:
    """One polygon, rasterised once for fast lookups; :meth:`contains` answers like the exact test."""

    def __init__(self, polygon: np.ndarray) -> None:
        self.polygon = np.asarray(polygon, dtype=np.float32).reshape(-1, 2)
        low = np.floor(self.polygon.min(axis=0).astype(np.float64)) - BAND_PX
        high = np.ceil(self.polygon.max(axis=0).astype(np.float64)) + BAND_PX
        width, height = high - low + 1
        self.origin = low  # pixel (0, 0) of the raster is at (x, y) = origin
        self.raster: np.ndarray | None = None
        if math.isfinite(width * height) and width * height <= MAX_MASK_PIXELS:
            raster = np.zeros((int(height), int(width)), np.uint8)
            fixed = np.round((self.polygon - low) * (1 << _SUBPIXEL_BITS)).astype(np.int32).reshape(-1, 1, 2)
            cv2.fillPoly(raster, [fixed], _INSIDE, cv2.LINE_8, _SUBPIXEL_BITS)
            cv2.polylines(raster, [fixed], True, _BAND, BAND_PX, cv2.LINE_8, _SUBPIXEL_BITS)
            self.raster = raster

    @property
    def nbytes(self) -> int:
        """Memory of the raster (0 when the polygon is too large to rasterise)."""
        return 0 if self.raster is None else self.raster.nbytes

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask over the (K, 2) ``points``: inside the polygon or on its boundary."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self.raster is None:
            return points_in_polygon(pts, self.polygon)
        height, width = self.raster.shape
        col = np.rint(pts[:, 0] - self.origin[0])
        row = np.rint(pts[:, 1] - self.origin[1])
        within = (col >= 0) & (col < width) & (row >= 0) & (row < height)  # NaN compares False: outside
        values = np.full(len(pts), _OUTSIDE, np.uint8)
        values[within] = self.raster[row[within].astype(np.int64), col[within].astype(np.int64)]
        result: np.ndarray = values == _INSIDE
        near_edge = values == _BAND
        if near_edge.any():
            result[near_edge] = points_in_polygon(pts[near_edge], self.polygon)
        return result


def points_in_any(points: np.ndarray, polygons: Iterable[np.ndarray | PolygonMask]) -> np.ndarray:
    """Boolean mask over ``points``: inside (or on) at least one of ``polygons``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    mask = np.zeros(len(pts), dtype=bool)
    for polygon in polygons:
        mask |= polygon.contains(pts) if isinstance(polygon, PolygonMask) else points_in_polygon(pts, polygon)
    return mask
