"""Head density over a sliding window: cells, units, the ring sliding, bounded memory, the picture."""

from __future__ import annotations

import numpy as np
import pytest

from crowdwatch.density import DensityWindow, render_heatmap

T0 = 1_800_000_000.0  # a multiple of 60: slot boundaries fall on whole minutes


def grid(**kw: float) -> DensityWindow:
    args: dict[str, float] = {"cell_px": 10, "window_s": 300, "slot_s": 60, **kw}
    return DensityWindow(100, 55, **args)  # type: ignore[arg-type]  # keyword arguments built per test case


def test_points_land_in_their_cells_as_people_per_100_px2_per_frame() -> None:
    window = grid()
    window.add(np.array([[5, 5], [9.9, 9.9], [95, 50]], np.float32), T0)
    window.add(np.array([[5, 5]], np.float32), T0 + 1)
    density = window.density()
    assert density.shape == (6, 10)  # 55 px high: the last row of cells is 5 px
    assert density[0, 0] == pytest.approx(3 / 2)  # 3 heads over 2 frames in a 100 px^2 cell
    assert density[5, 9] == pytest.approx(0.5 / 0.5)  # 0.5 per frame in a 10x5 px cell (0.5 x 100 px^2)
    assert density.sum() == pytest.approx(2.5)
    # With a ground scale of 10 px per metre a 10x10 px cell is 1 m^2.
    assert window.density(pixels_per_metre=10)[0, 0] == pytest.approx(1.5)


def test_window_slides_by_slots_and_forgets_what_left_it() -> None:
    window = grid(window_s=180, slot_s=60)  # 3 sub-grids
    for minute in range(3):
        window.add(np.array([[5 + 10 * minute, 5]], np.float32), T0 + 60 * minute)
    assert window.frames == 3 and np.count_nonzero(window.density()) == 3
    window.add(np.zeros((0, 2), np.float32), T0 + 180)  # minute 3: minute 0 leaves the window
    assert window.frames == 3
    assert window.density()[0, 0] == 0 and window.density()[0, 1] > 0
    window.add(np.array([[5, 5]], np.float32), T0 + 10)  # a late frame of a step that has left: ignored
    assert window.density()[0, 0] == 0
    window.add(np.array([[5, 5]], np.float32), T0 - 86_400)  # the clock stepped back a day: afresh
    assert window.frames == 1 and window.density()[0, 0] == pytest.approx(1)


def test_memory_is_fixed_by_the_ring_whatever_the_run_length() -> None:
    window = DensityWindow(1920, 1080, cell_px=16, window_s=900, slot_s=60)
    before = window.nbytes
    rng = np.random.default_rng(0)
    for i in range(200):
        window.add(rng.uniform(0, 1080, size=(300, 2)).astype(np.float32), T0 + i * 30)
    assert window.nbytes == before
    assert (window.slots, window.rows, window.cols) == (15, 68, 120)
    assert before == 15 * 68 * 120 * 4 + 15 * 8 * 2 + 68 * 120 * 4


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="slot_s"):
        DensityWindow(10, 10, cell_px=4, window_s=60, slot_s=120)


def test_render_blends_colour_where_people_were_and_adds_a_legend() -> None:
    frame = np.full((60, 120, 3), 128, np.uint8)
    density = np.zeros((6, 12), np.float32)
    density[2, 3] = 4.0
    out = render_heatmap(frame, density, cell_px=10, unit="100 px^2", window_s=900, frames=7)
    assert out.shape[1] == 120 and out.shape[0] > 60  # the legend strip below the frame
    assert not np.array_equal(out[25, 35], frame[25, 35])  # the dense cell is coloured
    assert np.array_equal(out[55, 110], frame[55, 110])  # empty floor keeps the picture
    empty = render_heatmap(frame, np.zeros_like(density), cell_px=10, unit="m^2", window_s=60, frames=0)
    assert np.array_equal(empty[:60], frame)
