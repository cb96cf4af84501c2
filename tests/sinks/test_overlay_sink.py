"""Overlay sink: atomic snapshots at an interval, decodable JPEGs, annotated video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from support.results import make_result

from crowdwatch.fileio import write_atomic
from crowdwatch.frames import Result
from crowdwatch.sinks.overlay import OverlaySink


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def result(camera: str, value: int, count: int = 2) -> Result:
    points = np.array([[20, 20], [60, 40]], np.float32)[:count]
    return make_result(camera, value, points=points, image=np.full((96, 128, 3), value, np.uint8))


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


def _zone_result(camera: str, alert: bool) -> Result:
    image = np.full((480, 640, 3), 100, np.uint8)
    points = [[150, 150], [160, 170]]
    return make_result(
        camera, points=points, image=image, zone_counts={"door": 2}, zone_alerts={"door": alert}
    )


def test_zones_are_outlined_with_their_count_and_alert_colour(tmp_path: Path) -> None:
    from crowdwatch.drawing import ZONE_ALERT_COLOR, ZONE_COLOR

    door = np.array([[100, 100], [500, 100], [500, 400], [100, 400]], np.float32)
    zones = {"calm": [("door", door)], "busy": [("door", door)]}
    with OverlaySink(tmp_path, interval_s=0.0, zones=zones) as sink:
        sink.write(_zone_result("calm", alert=False))
        sink.write(_zone_result("busy", alert=True))
        sink.write(_zone_result("nozones", alert=False))  # a camera without zones: no outline
    for camera, color in (("calm", ZONE_COLOR), ("busy", ZONE_ALERT_COLOR)):
        snap = cv2.imread(str(tmp_path / f"{camera}.jpg")).astype(int)
        edge = snap[250, 500]  # on the polygon's right edge, away from its label
        assert np.abs(edge - np.array(color)).max() < 60, (camera, edge)
        assert np.abs(snap[250, 300] - 100).max() < 20  # inside the zone the frame is untouched
    plain = cv2.imread(str(tmp_path / "nozones.jpg")).astype(int)
    assert np.abs(plain[250, 500] - 100).max() < 20
    # The points stay drawn on top of the zone (red dot at the first point).
    busy = cv2.imread(str(tmp_path / "busy.jpg")).astype(int)
    assert busy[150, 150][2] > 180 and busy[150, 150][1] < 80


def test_exclusions_are_hatched_inside_and_nowhere_else(tmp_path: Path) -> None:
    from crowdwatch.drawing import EXCLUDE_COLOR

    poster = np.array([[320, 40], [600, 40], [600, 300], [320, 300]], np.float32)
    with OverlaySink(tmp_path, interval_s=0.0, exclusions={"cam": [poster]}) as sink:
        sink.write(_zone_result("cam", alert=False))
    snap = cv2.imread(str(tmp_path / "cam.jpg"))
    assert snap is not None and snap.shape == (480, 640, 3)
    grey = np.abs(snap.astype(int) - np.array(EXCLUDE_COLOR)).max(axis=2) < 40
    inside, outside = grey[60:280, 340:580], grey[320:470, 20:300]
    # Hatching: a good share of the inside is line, and most of it is not (the frame shows through).
    assert 0.1 < inside.mean() < 0.7, inside.mean()
    assert outside.mean() < 0.01
    # Diagonal lines: a pixel on a line has line pixels at +-(1, 1), seldom at (1, -1).
    ys, xs = np.nonzero(inside[2:-2, 2:-2])
    diagonal = inside[ys + 3, xs + 3].mean()
    assert diagonal > inside[ys + 3, xs + 1].mean()


def test_a_reload_closes_a_removed_cameras_video_and_draws_the_new_zones(tmp_path: Path) -> None:
    """The removed camera's file is complete (readable to its last frame) while the sink still runs;
    the kept camera's video goes on, drawn with its new zone."""
    video = tmp_path / "video"
    sink = OverlaySink(tmp_path / "snap", snapshots=False, video_directory=video, video_fps=5)
    sink.open()
    for i in range(3):
        sink.write(result("gone", 100 + i))
        sink.write(result("kept", 100 + i))
    zone = np.array([[0, 0], [127, 0], [127, 95], [0, 95]], np.float32)
    sink.set_cameras({"kept": [("all", zone)]}, {}, closed=["gone"])
    (gone,) = video.glob("gone-*.mp4")
    capture = cv2.VideoCapture(str(gone))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    capture.release()
    sink.write(result("kept", 100))
    sink.close()
    (kept,) = video.glob("kept-*.mp4")
    capture = cv2.VideoCapture(str(kept))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 4  # one file for the whole run
    # The same picture (value 100) before and after: only the zone drawn on it differs.
    drawn = np.abs(frames[-1].astype(int) - frames[0].astype(int)).max(axis=2) > 60
    assert drawn.sum() > 100
