"""Point-in-polygon at crowd scale: the per-point ``cv2.pointPolygonTest`` loop zones used before, and
what they use now: :class:`crowdwatch.polygons.PolygonMask` (a raster lookup, with the exact test for
points next to an edge), beside the exact numpy test alone (:func:`crowdwatch.polygons.points_in_polygon`)
and a bare raster lookup at rounded coordinates (PolygonMask without its exact edges: it rounds points
to pixels, so x = 9.9 would count as inside a polygon whose edge is x = 10).

    PYTHONPATH=$PWD python benchmarks/bench_polygons.py [--points 3000] [--repeats 50]

Prints the median time per call (one polygon, all points) for polygons of 4, 12 and 48 vertices on a
1920x1080 frame (build: the one-off cost per polygon), and checks that the new ways agree with the old.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import cv2
import numpy as np

from crowdwatch.polygons import PolygonMask, points_in_polygon

WIDTH, HEIGHT = 1920, 1080


def before(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """zones.Zone.contains as it was: one cv2.pointPolygonTest call per point."""
    contour = polygon.reshape(-1, 1, 2)
    return np.fromiter(
        (cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points),
        dtype=bool,
        count=len(points),
    )


def raster_lookup(polygon: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A mask of the frame made once per polygon and frame size, then indexed by rounded points."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32).reshape(-1, 1, 2)], 1)

    def lookup(points: np.ndarray) -> np.ndarray:
        xy = np.round(points).astype(np.int64)
        x = np.clip(xy[:, 0], 0, WIDTH - 1)
        y = np.clip(xy[:, 1], 0, HEIGHT - 1)
        return mask[y, x].astype(bool)

    return lookup


def polygon_with(vertices: int, rng: np.random.Generator) -> np.ndarray:
    """A star-ish polygon around the frame centre (concave for vertices > 4)."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices)) if vertices > 4 else np.arange(4) * np.pi / 2 + 0.3
    radii = rng.uniform(250, 500, vertices) if vertices > 4 else np.full(4, 450.0)
    return np.stack([WIDTH / 2 + radii * np.cos(angles), HEIGHT / 2 + radii * np.sin(angles)], 1).astype(
        np.float32
    )


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    points = rng.uniform([0, 0], [WIDTH, HEIGHT], size=(args.points, 2)).astype(np.float32)
    print(f"{args.points} points on a {WIDTH}x{HEIGHT} frame; median of {args.repeats} calls")
    print(
        "| vertices | before: cv2 loop ms | now: PolygonMask ms (build) | speed-up "
        "| exact numpy test ms | bare raster lookup ms |"
    )
    print("|---|---|---|---|---|---|")
    for vertices in (4, 12, 48):
        polygon = polygon_with(vertices, rng)
        old = median_ms(partial(before, points, polygon), args.repeats)
        build = median_ms(partial(PolygonMask, polygon), max(5, args.repeats // 5))
        mask = PolygonMask(polygon)
        new = median_ms(partial(mask.contains, points), args.repeats)
        exact = median_ms(partial(points_in_polygon, points, polygon), args.repeats)
        lookup = raster_lookup(polygon)
        raster = median_ms(partial(lookup, points), args.repeats)
        reference = before(points, polygon)
        agree = np.array_equal(reference, mask.contains(points)) and np.array_equal(
            reference, points_in_polygon(points, polygon)
        )
        row = f"| {vertices} | {old:.3f} | {new:.3f} ({build:.2f}) | {old / new:.0f}x | {exact:.3f} "
        print(row + f"| {raster:.3f} |" + ("" if agree else " DISAGREE"))


if __name__ == "__main__":
    main()
