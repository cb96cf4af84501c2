"""Overlay sink: atomic snapshots at an interval, decodable JPEGs, annotated video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from crowdwatch.sinks.base import Result
from crowdwatch.fileio import write_atomic
from crowdwatch.sinks.overlay import OverlaySink


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def result(camera: str, value: int, count: int = 2) -> Result:
    points = np.array([[20, 20], [60, 40]], np.float32)[:count]
    return Result(camera=camera, index=value, captured_at=1e9, image=np.full((96, 128, 3), value, np.uint8),
                  points=points, count=count, latency_s=0.1)


def test_snapshot_per_camera_at_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    with OverlaySink(tmp_path, interval_s=1.0, clock=clock) as sink:
        sink.write(result("cam1", 50))
        sink.write(result("cam2", 200))
        clock.now = 0.5
        sink.write(result("cam1", 120))  # too soon: the snapshot keeps the first frame
        first = cv2.imread(str(tmp_path / "cam1.jpg"))
        assert first is not None and first.shape == (96, 128, 3)
        assert abs(int(np.median(first)) - 50) <= 3
        clock.now = 1.0
        sink.write(result("cam1", 120))
    second = cv2.imread(str(tmp_path / "cam1.jpg"))
    assert abs(int(np.median(second)) - 120) <= 3
    assert abs(int(np.median(cv2.imread(str(tmp_path / "cam2.jpg")))) - 200) <= 3
    # Points are drawn: the pixel at a point is no longer the flat background.
    assert not np.array_equal(second[40, 60], np.array([120, 120, 120], np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam1.jpg", "cam2.jpg"]  # no temp files left


def test_write_atomic_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    write_atomic(path, b"old" * 1000)
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_annotated_video_per_camera(tmp_path: Path) -> None:
    sink = OverlaySink(tmp_path / "snap", snapshots=False, video_directory=tmp_path / "video", video_fps=5)
    with sink:
        for i in range(6):
            sink.write(result("cam1", 40 * (i % 3)))
    videos = list((tmp_path / "video").glob("cam1-*.mp4"))
    assert len(videos) == 1
    capture = cv2.VideoCapture(str(videos[0]))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == 6
    assert not (tmp_path / "snap").exists()
