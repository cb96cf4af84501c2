"""The live view's state: the latest result per camera, its JPEG (encoded once, on demand), and history.

:meth:`LiveHub.publish` is called for every processed frame (on the sink thread) and only keeps a
reference: no drawing, no encoding. A viewer asking for a frame (:meth:`LiveHub.jpeg`) makes the hub
draw and encode that frame once; every other viewer of the same frame gets the same bytes. So with
no viewer nothing is encoded, and with N viewers each processed frame is encoded at most once per
kind (annotated, or raw for the editor), and at most ``max_fps`` times a second per camera.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from crowdwatch.capture.base import CameraState
from crowdwatch.drawing import draw_annotations
from crowdwatch.frames import Result

__all__ = ["HISTORY_S", "CameraView", "FrameKind", "LiveHub", "ZoneView"]

#: The sparkline's span: counts of the last 30 minutes, one point per second.
HISTORY_S = 1800
JPEG_QUALITY = 80
FrameKind = Literal["annotated", "raw"]


@dataclass(frozen=True)
class ZoneView:
    id: str
    polygon: np.ndarray
    high: float | None = None
    low: float | None = None
    for_s: float | None = None


@dataclass(frozen=True)
class CameraView:
    """What the page shows of one camera's config (never its URL)."""

    id: str
    kind: str
    fps: float | None
    zones: tuple[ZoneView, ...] = ()
    exclusions: tuple[np.ndarray, ...] = ()
    lines: tuple[dict[str, object], ...] = ()


@dataclass
class _Camera:
    view: CameraView
    latest: Result | None = None
    seq: int = 0
    encoded: dict[FrameKind, tuple[int, bytes]] = field(default_factory=dict)
    encoded_at: dict[FrameKind, float] = field(default_factory=dict)  # monotonic time of each encode
    encode_lock: threading.Lock = field(default_factory=threading.Lock)
    history: deque[list[float]] = field(default_factory=lambda: deque(maxlen=HISTORY_S + 1))


class LiveHub:
    """The latest result per camera, shared JPEGs and per-second count history (thread-safe)."""

    def __init__(
        self,
        cameras: Sequence[CameraView],
        *,
        states: Callable[[], Iterable[CameraState]] = tuple,
        jpeg_quality: int = JPEG_QUALITY,
        max_fps: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cameras = {view.id: _Camera(view) for view in cameras}
        self.states = states
        self.jpeg_quality = jpeg_quality
        self.min_interval_s = 1.0 / max_fps
        self._clock = clock
        self._changed = threading.Condition()
        self.closed = threading.Event()
        self.encodes = 0  # JPEG encodes so far (the benchmark and tests read it)

    @property
    def camera_ids(self) -> list[str]:
        return list(self._cameras)

    def view(self, camera: str) -> CameraView:
        return self._cameras[camera].view

    def set_cameras(self, cameras: Sequence[CameraView]) -> None:
        """The cameras after a config reload: a kept camera keeps its latest frame and history (its view,
        and so the shapes drawn, follow the new config); a new one starts empty; a removed one is gone."""
        with self._changed:
            kept = self._cameras
            self._cameras = {view.id: kept.get(view.id) or _Camera(view) for view in cameras}
            for view in cameras:
                cam = self._cameras[view.id]
                if cam.view != view:
                    cam.view = view
                    cam.encoded.clear()  # drawn with the old shapes
            self._changed.notify_all()

    def publish(self, result: Result) -> None:
        """Keep ``result`` as its camera's latest and add its counts to the history: O(1), no encoding."""
        cam = self._cameras.get(result.camera)
        if cam is None:
            return
        with self._changed:
            cam.latest = result
            cam.seq += 1
            second = float(int(result.captured_at))
            smoothed = result.count if result.smoothed_count is None else result.smoothed_count
            if cam.history and cam.history[-1][0] == second:
                bucket = cam.history[-1]  # [second, sum of counts, frames, last smoothed]
                bucket[1] += result.count
                bucket[2] += 1
                bucket[3] = smoothed
            else:
                cam.history.append([second, float(result.count), 1.0, smoothed])
            while cam.history and cam.history[0][0] < second - HISTORY_S:
                cam.history.popleft()
            self._changed.notify_all()

    def close(self) -> None:
        """Wake and end every waiting stream."""
        self.closed.set()
        with self._changed:
            self._changed.notify_all()

    def wait_for_frame(self, camera: str, after_seq: int, timeout: float) -> int:
        """The camera's frame number once it is past ``after_seq`` (or the current one after ``timeout``)."""
        cam = self._cameras[camera]
        deadline = time.monotonic() + timeout
        with self._changed:
            while cam.seq <= after_seq and not self.closed.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return cam.seq

    def jpeg(self, camera: str, kind: FrameKind = "annotated") -> tuple[int, bytes] | None:
        """(frame number, JPEG) of the camera's latest frame, encoded at most once per frame and kind."""
        cam = self._cameras[camera]
        with cam.encode_lock:  # a second viewer of the same frame waits for the first one's bytes
            with self._changed:
                result, seq = cam.latest, cam.seq
            if result is None:
                return None
            cached = cam.encoded.get(kind)
            now = self._clock()
            # the same frame, or one encoded less than 1/max_fps ago: a fast pipeline (a GPU at 100
            # frames/s) costs at most max_fps encodes per camera and second, whatever it processes
            if cached is not None and (cached[0] == seq or now - cam.encoded_at[kind] < self.min_interval_s):
                return cached
            image = result.image if kind == "raw" else self._annotate(cam.view, result)
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                raise RuntimeError(f"{camera}: JPEG encoding failed")
            self.encodes += 1
            cam.encoded[kind] = (seq, data.tobytes())
            cam.encoded_at[kind] = now
            return cam.encoded[kind]

    @staticmethod
    def _annotate(view: CameraView, result: Result) -> np.ndarray:
        return draw_annotations(
            result.image,
            result.points,
            result.count,
            [(zone.id, zone.polygon) for zone in view.zones],
            result.zone_counts,
            result.zone_alerts,
            view.exclusions,
        )

    def counts(self) -> dict[str, dict[str, object]]:
        """Per camera: up, down reason, frame number, capture time, raw and smoothed counts, per zone."""
        states = {state.camera: state for state in self.states()}
        out: dict[str, dict[str, object]] = {}
        with self._changed:
            for camera_id, cam in self._cameras.items():
                state = states.get(camera_id)
                entry: dict[str, object] = {
                    "up": bool(state.up) if state is not None else cam.latest is not None,
                    "reason": None if state is None or state.up else (state.reason or "no frame yet"),
                    "seq": cam.seq,
                }
                result = cam.latest
                if result is not None:
                    height, width = result.image.shape[:2]
                    entry.update(
                        frame=result.index,
                        captured_at=result.captured_at,
                        width=width,
                        height=height,
                        count=result.count,
                        smoothed=result.smoothed_count,
                        zones={
                            zone.id: {
                                "count": result.zone_counts.get(zone.id),
                                "smoothed": result.zone_smoothed.get(zone.id),
                                "alert": result.zone_alerts.get(zone.id, False),
                            }
                            for zone in cam.view.zones
                        },
                    )
                out[camera_id] = entry
        return out

    def history(self, camera: str) -> list[list[float]]:
        """[[unix second, mean raw count, last smoothed count], ...] over the last 30 minutes."""
        cam = self._cameras[camera]
        with self._changed:
            return [[b[0], round(b[1] / b[2], 3), round(b[3], 3)] for b in cam.history]
