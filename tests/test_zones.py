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


T0 = 1_800_000_000.0  # capture times: any epoch, only differences matter


def n_inside(n: int) -> np.ndarray:
    """``n`` points inside SQUARE."""
    return np.tile(np.array([[30, 30]], np.float32), (n, 1))


def run(zones: CameraZones, counts: list[int], fps: float = 2.0) -> list[tuple[float, bool, tuple]]:
    """(seconds since T0, alert state, changes) per frame of the zone counts ``counts``."""
    out = []
    for i, n in enumerate(counts):
        reading = zones.update(n_inside(n), T0 + i / fps)
        out.append((i / fps, reading.alerts["a"], reading.changes))
    return out


def test_for_s_raises_only_after_the_count_held_high_that_long() -> None:
    zones = CameraZones([Zone("a", np.array(SQUARE), high=5, low=2, for_s=3)])
    # 2 frames/s: high from t = 1.0 s; a dip at t = 2.0 restarts the wait; high again from t = 2.5.
    frames = run(zones, [0, 0, 6, 6, 1, 6, 6, 6, 6, 6, 6, 6, 6, 6])
    raised_at = [t for t, _, changes in frames if changes]
    assert raised_at == [5.5]  # 2.5 + 3.0
    assert [state for _, state, _ in frames] == [False] * 11 + [True] * 3
    (event,) = frames[11][2]
    assert (event.zone, event.state, event.threshold, event.count) == ("a", "raised", 5, 6)
    assert (event.since, event.at) == (T0 + 2.5, T0 + 5.5)


def test_for_s_clears_only_after_the_count_held_low_that_long_and_hysteresis_holds() -> None:
    zones = CameraZones([Zone("a", np.array(SQUARE), high=5, low=2, for_s=1)])
    counts = [6, 6, 6, 3, 3, 3, 3, 2, 2, 5, 2, 2, 2]  # 3 is between low and high: stays raised
    frames = run(zones, counts)
    changes = [(t, c.state, c.since - T0) for t, _, cs in frames for c in cs]
    assert changes == [(1.0, "raised", 0.0), (6.0, "cleared", 5.0)]
    assert frames[8][1] is True  # 2 for 0.5 s only: still raised, then 5 interrupts the wait


def test_for_s_zero_keeps_the_one_frame_hysteresis() -> None:
    zones = CameraZones([Zone("a", np.array(SQUARE), high=3, low=1)])
    states = [state for _, state, _ in run(zones, [0, 2, 3, 2, 4, 2, 1, 2, 0])]
    assert states == [False, False, True, True, True, True, False, False, False]


def test_alerts_use_the_smoothed_count() -> None:
    zones = CameraZones([Zone("a", np.array(SQUARE), high=5, low=2)], window_s=4)
    frames = run(zones, [0] * 10 + [10] * 10)  # the smoothed count reaches 5 two seconds after the jump
    first = next(t for t, state, _ in frames if state)
    assert first == pytest.approx(5.0 + 1.5)
    assert zones.update(n_inside(10), T0 + 100).zone_smoothed == {"a": 10}


def test_excluded_points_count_nowhere() -> None:
    poster = np.array([[0, 0], [20, 0], [20, 20], [0, 20]], np.float32)  # overlaps SQUARE's corner
    zones = CameraZones([Zone("a", np.array(SQUARE))], exclusions=[poster])
    points = pts((15, 15), (20, 20), (30, 30), (5, 5), (90, 90))
    reading = zones.update(points, T0)
    assert reading.kept.tolist() == [False, False, True, False, True]  # (20, 20) is on its edge
    assert (reading.count, reading.counts, reading.smoothed) == (2, {"a": 1}, 2)
    with pytest.raises(ValueError, match="exclusion polygon"):
        CameraZones([], exclusions=[np.array([[0, 0], [1, 1]])])


def test_a_reload_keeps_the_state_of_unchanged_zones_only() -> None:
    """After a reload, an unchanged zone keeps its smoothed count and its running ``for_s`` timer; a moved
    zone starts both afresh (its raised alert stays raised until its new count clears it); a zone with
    new thresholds keeps its raised state."""
    other = [[60, 60], [90, 60], [90, 90], [60, 90]]

    def zones(moved: list[list[int]], high: float = 5) -> CameraZones:
        return CameraZones(
            [
                Zone("same", np.array(SQUARE), high=5, low=1, for_s=4),
                Zone("moved", np.array(moved), high=5, low=1),
                Zone("retuned", np.array(SQUARE), high=high, low=1),
            ],
            window_s=4,
        )

    before = zones(SQUARE)
    for i in range(6):  # 8 inside from T0 to T0 + 2.5 s: same's timer runs, moved and retuned raised
        last = before.update(n_inside(8), T0 + i / 2)
    assert last.alerts == {"same": False, "moved": True, "retuned": True}
    after = zones(other, high=7)
    assert after.keep_state_of(before) == ["same"]
    reading = after.update(n_inside(4), T0 + 3.0)
    assert reading.zone_smoothed["same"] > 4  # its window went on: the earlier 8s still count
    assert reading.zone_smoothed["moved"] == 0  # afresh (and nobody inside its new polygon)
    assert [(c.zone, c.state) for c in reading.changes] == [("moved", "cleared")]
    assert reading.alerts == {"same": False, "moved": False, "retuned": True}
    reading = after.update(n_inside(4), T0 + 4.0)  # same: at or above high since T0, for 4 s
    assert [(c.zone, c.state, c.since) for c in reading.changes] == [("same", "raised", T0)]
    fresh = zones(SQUARE)
    assert fresh.keep_state_of(CameraZones([], window_s=1)) == []  # another window: nothing kept
