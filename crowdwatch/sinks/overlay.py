"""Overlay sink: the latest annotated snapshot per camera (atomic JPEG) and optional annotated video.

Snapshots go to ``<directory>/<camera>.jpg``: encoded in memory, written to a temporary file in the
same directory, fsynced, then ``os.replace``d over the old one, so a reader of the file sees either
the previous or the new image, never a half-written one. Videos go to
``<video_directory>/<camera>-<UTC start>.mp4`` (OpenCV ``mp4v``; pip OpenCV has no H.264 encoder).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.drawing import draw_annotations, draw_lines, draw_tails
from crowdwatch.fileio import write_atomic
from crowdwatch.frames import Result
from crowdwatch.sinks.base import SinkBase

logger = logging.getLogger(__name__)

JPEG_QUALITY = 90


#: A counting line as drawn: (id, first point, second point, in name, out name).
LineSpec = tuple[str, tuple[float, float], tuple[float, float], str, str]


class OverlaySink(SinkBase):
    """Snapshots every ``interval_s`` per camera (``snapshots=False`` to disable) and optional video.

    ``zones`` (camera -> [(zone id, polygon)]) are outlined with their counts, orange while alerting;
    ``exclusions`` (camera -> [polygon]) are hatched grey (their points were never counted);
    ``lines`` (camera -> [(id, a, b, in name, out name)]) are drawn with their totals, and the tracks'
    recent paths beside them.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        interval_s: float = 1.0,
        snapshots: bool = True,
        video_directory: str | Path | None = None,
        video_fps: Callable[[str], float] | float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        zones: Mapping[str, Sequence[tuple[str, np.ndarray]]] | None = None,
        exclusions: Mapping[str, Sequence[np.ndarray]] | None = None,
        lines: Mapping[str, Sequence[LineSpec]] | None = None,
    ) -> None:
        if interval_s < 0:
            raise ValueError(f"interval_s must be >= 0, but got {interval_s}")
        self.directory = Path(directory)
        self.interval_s = interval_s
        self.snapshots = snapshots
        self.video_directory = None if video_directory is None else Path(video_directory)
        self._video_fps = video_fps
        self._clock = clock
        self._zones = {camera: list(z) for camera, z in (zones or {}).items()}  # camera -> [(id, polygon)]
        self._exclusions = {camera: list(p) for camera, p in (exclusions or {}).items()}
        self._lines = {camera: list(specs) for camera, specs in (lines or {}).items()}
        self._last_snapshot: dict[str, float] = {}
        self._writers: dict[str, cv2.VideoWriter] = {}
        self._video_sizes: dict[str, tuple[int, int]] = {}

    def open(self) -> None:
        if self.snapshots:
            self.directory.mkdir(parents=True, exist_ok=True)
        if self.video_directory is not None:
            self.video_directory.mkdir(parents=True, exist_ok=True)

    def snapshot_path(self, camera: str) -> Path:
        return self.directory / f"{camera}.jpg"

    def write(self, result: Result) -> None:
        now = self._clock()
        due = self.snapshots and now - self._last_snapshot.get(result.camera, -np.inf) >= self.interval_s
        if not due and self.video_directory is None:
            return
        annotated = draw_annotations(
            result.image,
            result.points,
            result.count,
            self._zones.get(result.camera, ()),
            result.zone_counts,
            result.zone_alerts,
            self._exclusions.get(result.camera, ()),
        )
        if result.flow is not None:
            draw_tails(annotated, result.flow.tails)
            draw_lines(annotated, self._lines.get(result.camera, ()), result.flow.totals)
        if due:
            ok, encoded = cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise RuntimeError(f"{result.camera}: JPEG encoding of a snapshot failed")
            write_atomic(self.snapshot_path(result.camera), encoded.tobytes())
            self._last_snapshot[result.camera] = now
        if self.video_directory is not None:
            self._write_video(result.camera, annotated)

    def set_cameras(
        self,
        zones: Mapping[str, Sequence[tuple[str, np.ndarray]]],
        exclusions: Mapping[str, Sequence[np.ndarray]],
        closed: Sequence[str] = (),
        lines: Mapping[str, Sequence[LineSpec]] | None = None,
    ) -> None:
        """A config reload (on the sink thread): the zones, exclusions and (when given) counting lines
        drawn from the next result on, and the cameras whose video file ends here (removed, or
        restarted: a new file follows)."""
        if lines is not None:
            self._lines = {camera: list(specs) for camera, specs in lines.items()}
        self._zones = {camera: list(z) for camera, z in zones.items()}
        self._exclusions = {camera: list(p) for camera, p in exclusions.items()}
        for camera in closed:
            self._last_snapshot.pop(camera, None)
            writer = self._writers.pop(camera, None)
            if writer is not None:
                writer.release()
                logger.info("%s: annotated video closed (config reloaded)", camera)

    def close(self) -> None:
        for camera, writer in self._writers.items():
            writer.release()
            logger.info("%s: annotated video closed", camera)
        self._writers.clear()

    def _write_video(self, camera: str, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        writer = self._writers.get(camera)
        if writer is not None and self._video_sizes[camera] != (width, height):
            writer.release()  # the camera changed resolution: start a new file
            writer = None
        if writer is None:
            assert self.video_directory is not None
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            path = self.video_directory / f"{camera}-{stamp}.mp4"
            fps = self._video_fps(camera) if callable(self._video_fps) else self._video_fps
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), (width, height))
            if not writer.isOpened():
                raise RuntimeError(f"{camera}: cannot open video writer for {path}")
            logger.info("%s: writing annotated video to %s at %.3g frames/s", camera, path, fps)
            self._writers[camera] = writer
            self._video_sizes[camera] = (width, height)
        writer.write(frame)
