"""Zones: point-in-polygon counts and the hysteresis of occupancy alerts."""

from __future__ import annotations

import numpy as np
import pytest

from crowdwatch.zones import CameraZones, Zone

SQUARE = [[10, 10], [50, 10], [50, 50], [10, 50]]


def pts(*xy: tuple[float, float]) -> np.ndarray:
    return np.array(xy, dtype=np.float32).reshape(-1, 2)


def test_points_inside_on_boundary_and_outside() -> None:
    zone = Zone("door", np.array(SQUARE))
    mask = zone.contains(pts((30, 30), (10, 30), (50, 50), (9.9, 30), (60, 60)))
    assert mask.tolist() == [True, True, True, False, False]


def test_concave_polygon() -> None:
    # An L shape: the notch (40, 40) is outside although it is inside the bounding box.
    zone = Zone("l", np.array([[0, 0], [60, 0], [60, 20], [20, 20], [20, 60], [0, 60]]))
    assert zone.contains(pts((10, 50), (50, 10), (40, 40))).tolist() == [True, True, False]


def test_empty_points_give_zero_counts() -> None:
    zones = CameraZones([Zone("a", np.array(SQUARE))])
    assert zones.update(np.zeros((0, 2), np.float32)).counts == {"a": 0}


def test_per_zone_counts_overlap() -> None:
    big = np.array([[0, 0], [100, 0], [100, 100], [0, 100]])
    zones = CameraZones([Zone("a", np.array(SQUARE)), Zone("b", big)])
    reading = zones.update(pts((30, 30), (70, 70), (200, 200)))
    assert reading.counts == {"a": 1, "b": 2}
    assert reading.alerts == {}


def test_alert_hysteresis_raises_at_high_and_clears_at_low() -> None:
    zones = CameraZones([Zone("a", np.array(SQUARE), high=3, low=1)])
    inside = [(20, 20), (30, 30), (40, 40), (25, 25)]
    states = []
    for n in [0, 2, 3, 2, 4, 2, 1, 2, 0]:
        states.append(zones.update(pts(*inside[:n]) if n else np.zeros((0, 2), np.float32)).alerts["a"])
    assert states == [False, False, True, True, True, True, False, False, False]


@pytest.mark.parametrize(
    ("polygon", "high", "low"),
    [([[0, 0], [1, 1]], None, None), (SQUARE, 3, None), (SQUARE, 3, 3), (SQUARE, 2, 5)],
)
def test_invalid_zones_are_rejected(polygon: list[list[int]], high: int | None, low: int | None) -> None:
    with pytest.raises(ValueError, match="zone 'z'"):
        Zone("z", np.array(polygon), high=high, low=low)


def test_duplicate_zone_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        CameraZones([Zone("a", np.array(SQUARE)), Zone("a", np.array(SQUARE))])
