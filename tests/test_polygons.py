"""Vectorised point-in-polygon: the same answers as cv2.pointPolygonTest (inside or on the boundary)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from crowdwatch.polygons import points_in_any, points_in_polygon

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
}


def opencv(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points])


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
    assert np.array_equal(points_in_polygon(random, polygon), opencv(random, polygon))


def test_just_outside_an_edge_is_outside_and_no_points_is_empty() -> None:
    square = np.array(POLYGONS["square"])
    assert points_in_polygon(np.array([[9.9, 30], [10, 30], [50.01, 50]]), square).tolist() == [
        False,
        True,
        False,
    ]
    assert points_in_polygon(np.zeros((0, 2)), square).shape == (0,)


def test_any_of_several_polygons() -> None:
    a = np.array([[0, 0], [10, 0], [10, 10], [0, 10]])
    b = np.array([[20, 0], [30, 0], [30, 10], [20, 10]])
    points = np.array([[5, 5], [15, 5], [25, 5]])
    assert points_in_any(points, [a, b]).tolist() == [True, False, True]
    assert points_in_any(points, []).tolist() == [False, False, False]
