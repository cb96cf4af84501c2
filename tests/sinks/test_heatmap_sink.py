"""Heatmap sink: JPEG and .npy written atomically at an interval and at close, decoded from disk."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from support.results import make_result

from crowdwatch.frames import Result
from crowdwatch.sinks.heatmap import HeatmapSink

T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def result(
    camera: str, points: list[tuple[float, float]], t: float, size: tuple[int, int] = (120, 160)
) -> Result:
    return make_result(camera, points=points, captured_at=t, image=np.full((*size, 3), 90, np.uint8))


def test_heatmap_jpeg_and_grid_are_written_at_the_interval_and_at_close(tmp_path: Path) -> None:
    clock = FakeClock()
    sink = HeatmapSink(tmp_path, window_s=60, slot_s=10, cell_px=20, interval_s=30, npy=True, clock=clock)
    with sink:
        for i in range(10):
            sink.write(result("cam1", [(30, 30), (35, 25), (150, 110)], T0 + i))
        assert not sink.image_path("cam1").exists()  # not due yet
        clock.now = 30.0
        sink.write(result("cam1", [(30, 30)], T0 + 10))
        first = cv2.imread(str(sink.image_path("cam1")))
        assert first is not None
        sink.write(result("cam2", [], T0 + 10, size=(60, 80)))
    grid = np.load(sink.grid_path("cam1"))
    assert grid.dtype == np.float32 and grid.shape == (6, 8)
    # 21 heads in cell (1, 1) over 11 frames, 400 px^2 = 4 x 100 px^2.
    assert grid[1, 1] == pytest.approx(21 / 11 / 4)
    assert grid[5, 7] == pytest.approx(10 / 11 / 4)
    assert grid.sum() == pytest.approx(21 / 11 / 4 + 10 / 11 / 4)
    picture = cv2.imread(str(sink.image_path("cam1")))
    assert picture.shape[1] == 160 and picture.shape[0] > 120  # frame plus legend strip
    assert np.abs(picture[30, 30].astype(int) - 90).max() > 40  # the dense cell is coloured
    assert np.abs(picture[100, 20].astype(int) - 90).max() < 15  # no one there: the frame shows
    empty = np.load(sink.grid_path("cam2"))
    assert empty.shape == (3, 4) and not empty.any()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam1.jpg", "cam1.npy", "cam2.jpg", "cam2.npy"]


def test_a_scale_gives_people_per_square_metre(tmp_path: Path) -> None:
    with HeatmapSink(tmp_path, window_s=60, slot_s=60, cell_px=20, npy=True, pixels_per_metre={"c": 20}) as s:
        s.write(result("c", [(5, 5), (6, 6)], T0))
    assert np.load(s.grid_path("c"))[0, 0] == pytest.approx(2.0)  # 2 people in a 1 m^2 cell


def test_a_removed_camera_gets_its_last_heatmap_and_the_others_keep_their_window(tmp_path: Path) -> None:
    clock = FakeClock()
    sink = HeatmapSink(tmp_path, window_s=60, slot_s=10, interval_s=30, clock=clock)
    sink.open()
    sink.write(result("yard", [(10, 10)], T0))
    sink.write(result("hall", [(20, 20), (30, 30)], T0))
    hall = sink.grid("hall")
    assert not sink.image_path("yard").exists()  # not due yet
    poster = [np.array([[0, 0], [40, 0], [40, 40]], np.float32)]
    sink.set_cameras({"hall": 2.0}, {"hall": poster}, removed=["yard"])
    assert cv2.imread(str(sink.image_path("yard"))) is not None  # written at removal
    assert sink.grid("yard") is None and sink.grid("hall") is hall
    sink.write(result("hall", [(20, 20)], T0 + 1))
    assert hall is not None and hall.frames == 2  # the window goes on
    sink.close()
