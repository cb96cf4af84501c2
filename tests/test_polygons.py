"""Vectorised point-in-polygon: the same answers as cv2.pointPolygonTest (inside or on the boundary)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from crowdwatch.polygons import (
    EDGE_TOLERANCE_PX,
    MAX_MASK_PIXELS,
    PolygonMask,
    points_in_any,
    points_in_polygon,
)

POLYGONS = {
    "square": [[10, 10], [50, 10], [50, 50], [10, 50]],
    "concave": [[0, 0], [60, 0], [60, 20], [20, 20], [20, 60], [0, 60]],
    "star": [
        [50, 0],
        [61, 35],
        [98, 35],
        [68, 57],
        [79, 91],
        [50, 70],
        [21, 91],
        [32, 57],
        [2, 35],
        [39, 35],
    ],
    "self-crossing bow-tie": [[0, 0], [80, 80], [80, 0], [0, 80]],
    "float vertices": [[3.3, 4.7], [71.2, 9.9], [64.5, 77.1], [8.8, 55.5]],
    "pentagram (even-odd: its centre is outside)": [[50, 0], [79, 90], [2, 35], [98, 35], [21, 90]],
    "48 vertices": np.stack(
        [
            50 + 45 * np.cos(np.linspace(0, 2 * np.pi, 48, endpoint=False)) * (1 + 0.3 * (np.arange(48) % 2)),
            50 + 45 * np.sin(np.linspace(0, 2 * np.pi, 48, endpoint=False)) * (1 + 0.3 * (np.arange(48) % 2)),
        ],
        axis=1,
    ).tolist(),
}


def opencv(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points])


def clear_of_edges(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Points farther from every edge than twice the edge tolerance: where OpenCV's exact zero and our
    tolerance cannot disagree (a point 0.0005 px off an edge is on it for us, outside for OpenCV)."""
    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    distance = np.array([abs(cv2.pointPolygonTest(contour, (float(x), float(y)), True)) for x, y in points])
    return distance > 2 * EDGE_TOLERANCE_PX


@pytest.mark.parametrize("name", POLYGONS)
def test_matches_opencv_on_random_points_and_on_vertices_and_edges(name: str) -> None:
    polygon = np.array(POLYGONS[name], np.float32)  # as zones store them
    rng = np.random.default_rng(0)
    random = rng.uniform(-10, 110, size=(3000, 2)).astype(np.float32)
    starts = polygon
    ends = np.roll(polygon, -1, axis=0)
    midpoints = (starts + ends) / 2
    on_boundary = np.vstack([starts, midpoints]).astype(np.float32)
    assert points_in_polygon(on_boundary, polygon).all(), "vertices and edge midpoints are inside"
    # OpenCV agrees on exact ones; a float32 midpoint of a slanted edge may sit 1e-6 px off it.
    clear = clear_of_edges(random, polygon)
    assert clear.mean() > 0.99
    assert np.array_equal(points_in_polygon(random, polygon)[clear], opencv(random, polygon)[clear])
    assert np.array_equal(PolygonMask(polygon).contains(random), points_in_polygon(random, polygon))
    assert PolygonMask(polygon).contains(on_boundary).all()


@pytest.mark.parametrize("name", POLYGONS)
def test_the_raster_lookup_agrees_with_the_exact_test_right_next_to_the_edges(name: str) -> None:
    polygon = np.array(POLYGONS[name], np.float32)
    rng = np.random.default_rng(1)
    starts, ends = polygon, np.roll(polygon, -1, axis=0)
    along = rng.uniform(0, 1, size=(len(polygon), 200, 1))
    on_edges = (starts[:, None] + along * (ends - starts)[:, None]).reshape(-1, 2)
    jitter = rng.choice([-3, -1.5, -0.6, -0.01, 0, 0.01, 0.6, 1.5, 3], size=on_edges.shape)
    points = (on_edges + jitter).astype(np.float32)
    mask = PolygonMask(polygon)
    assert mask.raster is not None
    assert np.array_equal(mask.contains(points), points_in_polygon(points, polygon))


def test_just_outside_an_edge_is_outside_and_no_points_is_empty() -> None:
    square = np.array(POLYGONS["square"])
    assert points_in_polygon(np.array([[9.9, 30], [10, 30], [50.01, 50]]), square).tolist() == [
        False,
        True,
        False,
    ]
    assert points_in_polygon(np.zeros((0, 2)), square).shape == (0,)


def test_points_off_the_raster_and_polygons_too_big_to_rasterise() -> None:
    square = PolygonMask(np.array(POLYGONS["square"], np.float32))
    far = np.array([[-1e9, 30], [30, 1e9], [np.nan, 30], [30, 30]], np.float32)
    assert square.contains(far).tolist() == [False, False, False, True]
    side = float(np.sqrt(MAX_MASK_PIXELS)) * 2
    huge = PolygonMask(np.array([[0, 0], [side, 0], [side, side]], np.float32))
    assert huge.raster is None and huge.nbytes == 0
    assert huge.contains(np.array([[side - 1, 1], [1, side - 1]])).tolist() == [True, False]


def test_any_of_several_polygons() -> None:
    a = np.array([[0, 0], [10, 0], [10, 10], [0, 10]])
    b = np.array([[20, 0], [30, 0], [30, 10], [20, 10]])
    points = np.array([[5, 5], [15, 5], [25, 5]])
    assert points_in_any(points, [a, b]).tolist() == [True, False, True]
    assert points_in_any(points, []).tolist() == [False, False, False]
    assert points_in_any(points, [PolygonMask(a), b]).tolist() == [True, False, True]


@pytest.mark.parametrize("name", POLYGONS)
def test_the_edge_by_edge_and_all_pairs_ways_agree_on_many_points(name: str) -> None:
    from crowdwatch.polygons import _few_points_in_polygon

    polygon = np.array(POLYGONS[name], np.float32)
    points = np.random.default_rng(2).uniform(-10, 110, size=(20_000, 2)).astype(np.float32)
    edge_by_edge = points_in_polygon(points, polygon)  # 20000 points: too many for the all-pairs way
    pts = points.astype(np.float64)
    all_pairs = _few_points_in_polygon(pts[:, 0], pts[:, 1], polygon.astype(np.float64))
    assert np.array_equal(edge_by_edge, all_pairs)
    clear = clear_of_edges(points, polygon)
    assert np.array_equal(edge_by_edge[clear], opencv(points, polygon)[clear])
