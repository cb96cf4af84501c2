"""The inference worker: one shared model, dynamic batching across cameras, results handed to sinks.

Batching: the worker takes at most one frame per camera from the readers' latest-frame slots (a
camera whose frame is already waiting in a batch is not asked again, so its reader keeps only the
newest frame and counts the older one as superseded). Frames are grouped by their size (H, W), and a
group becomes a batch when it is full (``max_batch``), when its oldest frame has waited
``max_wait_ms`` in the worker, or when every camera already has a frame waiting (no more could join).

Why group by size: the preprocessor pads every frame of a batch to the batch's largest size, and
padding changes the network's activations near the border. Batching only equal-sized frames keeps
every frame's padding exactly what it gets alone, so a camera's count equals what
``crowdwatch count`` gives on the same frame. Cameras of different resolutions simply form
different batches.

Results go to the sinks through a bounded queue drained by a separate sink thread, so a slow disk
never stalls inference; a result that finds the queue full is dropped and counted
(``frames_dropped_total{reason="sink_overload"}``). Metrics are updated on the inference thread
(in-memory, microseconds), so gauges and counters stay exact even when the sinks fall behind.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from crowdwatch.frames import Frame
from crowdwatch.sinks.base import Result, Sink
from crowdwatch.zones import CameraZones

logger = logging.getLogger(__name__)

#: How often the sink thread lets sinks flush when no result arrives.
SINK_TICK_S = 0.2
#: A failing sink is reported at most this often (it may fail on every row while a disk is full).
SINK_ERROR_LOG_INTERVAL_S = 60.0


class FrameSource(Protocol):
    """What the worker needs of a camera reader."""

    def take(self) -> Frame | None: ...


class PredictionLike(Protocol):
    points: np.ndarray
    count: int


class PredictorLike(Protocol):
    def predict(self, images: Sequence[np.ndarray]) -> Sequence[PredictionLike]: ...


class WorkerEvents(Protocol):
    """What the worker reports (implemented by :class:`crowdwatch.sinks.metrics.PipelineMetrics`)."""

    def batch_done(self, size: int, seconds: float) -> None: ...

    def result_published(self, result: Result) -> None: ...

    def frame_dropped(self, camera: str, reason: str, n: int = 1) -> None: ...


class NullWorkerEvents:
    def batch_done(self, size: int, seconds: float) -> None:
        pass

    def result_published(self, result: Result) -> None:
        pass

    def frame_dropped(self, camera: str, reason: str, n: int = 1) -> None:
        pass


def _source_camera(source: object) -> str | None:
    """The camera id of a reader (``.camera_id``, or ``.camera.id``), None when it does not say."""
    camera = getattr(source, "camera_id", None) or getattr(getattr(source, "camera", None), "id", None)
    return camera if isinstance(camera, str) else None


class Batcher:
    """Groups frames into batches (no threads, no clock of its own: ``now`` is passed in).

    Args:
        max_batch: a group with this many frames is a batch at once.
        max_wait_s: a group whose oldest frame arrived this long ago is a batch.
        cameras: how many cameras exist; once each has a frame waiting, every group is a batch.
    """

    def __init__(self, max_batch: int, max_wait_s: float, cameras: int | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, but got {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, but got {max_wait_s}")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.cameras = cameras
        # (H, W) -> [(arrival, frame)], oldest first; dicts keep insertion order.
        self._groups: dict[tuple[int, int], list[tuple[float, Frame]]] = {}

    @property
    def pending_cameras(self) -> set[str]:
        return {frame.camera for group in self._groups.values() for _, frame in group}

    def __len__(self) -> int:
        return sum(len(group) for group in self._groups.values())

    def add(self, frame: Frame, now: float) -> Frame | None:
        """Queue ``frame``; returns the older frame of the same camera it replaced, if any."""
        replaced = self._remove_camera(frame.camera)
        key = (frame.height, frame.width)
        self._groups.setdefault(key, []).append((now, frame))
        return replaced

    def pop_ready(self, now: float) -> list[list[Frame]]:
        """Batches that are due at ``now``, oldest group first (each at most ``max_batch`` frames)."""
        everyone_waiting = self.cameras is not None and len(self.pending_cameras) >= self.cameras
        ready = []
        for key in list(self._groups):
            group = self._groups[key]
            while group and (
                len(group) >= self.max_batch or now - group[0][0] >= self.max_wait_s or everyone_waiting
            ):
                ready.append([frame for _, frame in group[: self.max_batch]])
                del group[: self.max_batch]
            if not group:
                del self._groups[key]
        return ready

    def pop_all(self) -> list[list[Frame]]:
        """Every waiting frame, as batches (used on shutdown)."""
        batches = []
        for group in self._groups.values():
            frames = [frame for _, frame in group]
            batches += [frames[i : i + self.max_batch] for i in range(0, len(frames), self.max_batch)]
        self._groups.clear()
        return batches

    def next_deadline(self) -> float | None:
        """When the oldest waiting frame's group falls due (``None`` when nothing waits)."""
        arrivals = [group[0][0] for group in self._groups.values() if group]
        return min(arrivals) + self.max_wait_s if arrivals else None

    def _remove_camera(self, camera: str) -> Frame | None:
        for key, group in self._groups.items():
            for i, (_, frame) in enumerate(group):
                if frame.camera == camera:
                    del group[i]
                    if not group:
                        del self._groups[key]
                    return frame
        return None


class Worker:
    """Runs frames from ``sources`` through ``predictor`` and publishes :class:`Result` s.

    ``wake`` is the event the readers set when they have a new frame (the worker also polls every
    ``poll_s``). ``zones`` maps a camera id to its zones. ``events`` receives metrics. ``sinks`` are
    written from the sink thread only; the caller opens and closes them.
    """

    def __init__(
        self,
        predictor: PredictorLike,
        sources: Sequence[FrameSource],
        *,
        sinks: Sequence[Sink] = (),
        events: WorkerEvents | None = None,
        zones: Mapping[str, CameraZones] | None = None,
        max_batch: int = 4,
        max_wait_ms: float = 50.0,
        queue_size: int = 32,
        wake: threading.Event | None = None,
        poll_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.predictor = predictor
        self.sources = list(sources)
        self.sinks = list(sinks)
        self.events: WorkerEvents = events if events is not None else NullWorkerEvents()
        self.zones = dict(zones or {})
        self.batcher = Batcher(max_batch, max_wait_ms / 1000.0, cameras=len(self.sources) or None)
        self.wake = wake if wake is not None else threading.Event()
        self.poll_s = poll_s
        self._clock = clock
        self._queue: queue.Queue[Result | None] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._last_progress: float | None = None
        self._sink_errors: dict[int, float] = {}
        self._inference = threading.Thread(target=self._run_inference, name="worker", daemon=True)
        self._sink_thread = threading.Thread(target=self._run_sinks, name="sinks", daemon=True)
        self.batches = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._sink_thread.start()
        self._inference.start()

    def stop(self, timeout: float = 8.0) -> bool:
        """Finish the batch in flight and the frames waiting, drain the sinks; True if all finished."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self.wake.set()
        if self._inference.is_alive():
            self._inference.join(max(0.0, deadline - time.monotonic()))
        finished = not self._inference.is_alive()
        if self._sink_thread.is_alive():
            self._enqueue_stop(deadline)
            self._sink_thread.join(max(0.0, deadline - time.monotonic()))
        return finished and not self._sink_thread.is_alive()

    def last_progress_monotonic(self) -> float | None:
        """``time.monotonic()`` when the last batch finished (None before the first): for the watchdog."""
        return self._last_progress

    # -- inference -----------------------------------------------------------------------------
    def process(self, frames: Sequence[Frame]) -> list[Result]:
        """Run one batch and publish its results (the inference thread's work; callable in tests)."""
        started = self._clock()
        predictions = self.predictor.predict([frame.image for frame in frames])
        self.events.batch_done(len(frames), self._clock() - started)
        results = []
        for frame, prediction in zip(frames, predictions, strict=True):
            zones = self.zones.get(frame.camera)
            reading = zones.update(prediction.points) if zones is not None else None
            result = Result(
                camera=frame.camera,
                index=int(frame.index),
                captured_at=frame.captured_at,
                image=frame.image,
                points=np.asarray(prediction.points, dtype=np.float32).reshape(-1, 2),
                count=int(prediction.count),
                latency_s=max(0.0, self._clock() - frame.monotonic),
                zone_counts=reading.counts if reading else {},
                zone_alerts=reading.alerts if reading else {},
            )
            self._publish(result)
            results.append(result)
        self._last_progress = self._clock()
        self.batches += 1
        return results

    def _publish(self, result: Result) -> None:
        self.events.result_published(result)
        if not self.sinks:
            return
        try:
            self._queue.put_nowait(result)
        except queue.Full:
            self.events.frame_dropped(result.camera, "sink_overload")

    def _run_inference(self) -> None:
        try:
            while not self._stop.is_set():
                self.wake.clear()
                self._collect_from_idle_cameras()
                batches = self.batcher.pop_ready(self._clock())
                for batch in batches:
                    self._process_safely(batch)
                if not batches:
                    deadline = self.batcher.next_deadline()
                    timeout = self.poll_s if deadline is None else min(self.poll_s, deadline - self._clock())
                    self.wake.wait(max(0.0, timeout))
            for batch in self.batcher.pop_all():  # finish what was already taken from the cameras
                self._process_safely(batch)
        except BaseException:
            logger.exception("worker: inference thread died")
            raise

    def _collect_from_idle_cameras(self) -> None:
        """Take a frame from each source whose camera has none waiting (newer ones stay in the slot)."""
        waiting = self.batcher.pending_cameras
        now = self._clock()
        for source in self.sources:
            if _source_camera(source) in waiting:
                continue
            frame = source.take()
            if frame is None:
                continue
            replaced = self.batcher.add(frame, now)
            if replaced is not None:
                self.events.frame_dropped(replaced.camera, "superseded")

    def _process_safely(self, batch: Sequence[Frame]) -> None:
        try:
            self.process(batch)
        except Exception:
            cameras = ", ".join(frame.camera for frame in batch)
            logger.exception("worker: a batch of %d frames (%s) failed", len(batch), cameras)

    # -- sinks ---------------------------------------------------------------------------------
    def _enqueue_stop(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                self._queue.put(None, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run_sinks(self) -> None:
        while True:
            try:
                result = self._queue.get(timeout=SINK_TICK_S)
            except queue.Empty:
                result = False
            if result is None:
                break
            for sink in self.sinks:
                if result is not False:
                    self._call(sink, sink.write, result)
                self._call(sink, sink.tick)

    def _call(self, sink: Sink, method: Callable[..., None], *args: object) -> None:
        try:
            method(*args)
        except Exception:
            now = time.monotonic()
            if now - self._sink_errors.get(id(sink), -SINK_ERROR_LOG_INTERVAL_S) >= SINK_ERROR_LOG_INTERVAL_S:
                self._sink_errors[id(sink)] = now
                logger.exception("worker: sink %s failed (reported once a minute)", type(sink).__name__)
