"""The inference worker: one shared model, dynamic batching across cameras, results handed to sinks.

The worker takes at most one frame per camera from the readers' latest-frame slots (a camera whose
frame is already waiting in a batch is not asked again, so its reader keeps only the newest frame and
counts the older one as superseded), and runs the batches the :class:`~crowdwatch.inference.batcher.Batcher`
makes (frames of one size; full, waited ``max_wait_ms``, or every camera waiting).

Results go to the sinks through the :class:`~crowdwatch.sinks.runner.SinkRunner` (a bounded queue
drained by its own thread), so a slow disk never stalls inference; a result that finds the queue full
is dropped and counted (``frames_dropped_total{reason="sink_overload"}``). Metrics are updated on the
inference thread (in-memory, microseconds), so gauges and counters stay exact even when the sinks
fall behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from crowdwatch.errors import InferenceUnavailable
from crowdwatch.frames import Frame
from crowdwatch.inference.batcher import Batcher
from crowdwatch.sinks.base import Result, Sink
from crowdwatch.sinks.runner import SinkRunner
from crowdwatch.zones import CameraZones

__all__ = ["FrameSource", "NullWorkerEvents", "PredictorLike", "Worker", "WorkerEvents"]

logger = logging.getLogger(__name__)


class FrameSource(Protocol):
    """What the worker needs of a camera reader: which camera it is, and its latest frame."""

    @property
    def camera_id(self) -> str: ...

    def take(self) -> Frame | None: ...


class PredictionLike(Protocol):
    @property
    def points(self) -> np.ndarray: ...

    @property
    def count(self) -> int: ...


class PredictorLike(Protocol):
    def predict(self, images: Sequence[np.ndarray]) -> Sequence[PredictionLike]: ...


class WorkerEvents(Protocol):
    """What the worker reports (implemented by :class:`crowdwatch.telemetry.metrics.PipelineMetrics`)."""

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


class Worker:
    """Runs frames from ``sources`` through ``predictor`` and publishes :class:`Result` s.

    ``wake`` is the event the readers set when they have a new frame (the worker also polls every
    ``poll_s``). ``zones`` maps a camera id to its zones, exclusions, smoothing and alerts (a camera
    without an entry gets an empty :class:`CameraZones`: no exclusions, smoothed = raw count); points
    inside an exclusion are removed from the result before anyone sees them. ``events`` receives
    metrics. ``sinks`` are written from the sink runner's thread only; the caller opens and closes them.
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
        self._sinks = SinkRunner(self.sinks, queue_size=queue_size)
        self._stop = threading.Event()
        self._last_progress: float | None = None
        self._busy = False  # inside predictor.predict
        self._inference = threading.Thread(target=self._run_inference, name="worker", daemon=True)
        self.batches = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._sinks.start()
        self._inference.start()

    def stop(self, timeout: float = 8.0) -> bool:
        """Finish the batch in flight and the frames waiting, drain the sinks; True if all finished."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self.wake.set()
        if self._inference.is_alive():
            self._inference.join(max(0.0, deadline - time.monotonic()))
        finished = not self._inference.is_alive()
        return self._sinks.stop(deadline) and finished

    @property
    def busy(self) -> bool:
        """True while a batch is inside the model (what a stop that cannot wait leaves behind)."""
        return self._busy

    @property
    def sink_runner(self) -> SinkRunner:
        """The runner feeding the sinks: its ``status()`` is each sink's lost rows and failing reason."""
        return self._sinks

    def last_progress_monotonic(self) -> float | None:
        """``time.monotonic()`` when the last batch finished (None before the first): for the watchdog."""
        return self._last_progress

    # -- inference -----------------------------------------------------------------------------
    def process(self, frames: Sequence[Frame]) -> list[Result]:
        """Run one batch and publish its results (the inference thread's work; callable in tests)."""
        started = self._clock()
        self._busy = True
        try:
            predictions = self.predictor.predict([frame.image for frame in frames])
        finally:
            self._busy = False
        self.events.batch_done(len(frames), self._clock() - started)
        results = []
        for frame, prediction in zip(frames, predictions, strict=True):
            zones = self.zones.get(frame.camera)
            if zones is None:
                zones = self.zones[frame.camera] = CameraZones(())
            points = np.asarray(prediction.points, dtype=np.float32).reshape(-1, 2)
            reading = zones.update(points, frame.captured_at)
            excluded = len(points) - reading.count
            result = Result(
                camera=frame.camera,
                index=int(frame.index),
                captured_at=frame.captured_at,
                image=frame.image,
                points=points[reading.kept] if excluded else points,
                count=max(0, int(prediction.count) - excluded),
                latency_s=max(0.0, self._clock() - frame.monotonic),
                zone_counts=reading.counts,
                zone_alerts=reading.alerts,
                smoothed_count=reading.smoothed,
                zone_smoothed=reading.zone_smoothed,
                alert_events=reading.changes,
            )
            for event in result.alert_events:
                logger.info(
                    "%s: zone %s alert %s (smoothed count %.1f vs %g for %.1f s)",
                    frame.camera,
                    event.zone,
                    event.state,
                    event.count,
                    event.threshold,
                    event.at - event.since,
                )
            self._publish(result)
            results.append(result)
        self._last_progress = self._clock()
        self.batches += 1
        return results

    def _publish(self, result: Result) -> None:
        self.events.result_published(result)
        if self.sinks and not self._sinks.submit(result):
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
            if source.camera_id in waiting:
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
        except InferenceUnavailable:
            # The inference pool (backend triton) is down or late: a fault like a camera that is down. Its
            # frames are dropped and counted, no count is made up; the backend logs the reason once per
            # streak. The worker itself is deciding as it should, so this counts as progress for the
            # watchdog (a restart would not bring the pool back).
            for frame in batch:
                self.events.frame_dropped(frame.camera, "inference_unavailable")
            self._last_progress = self._clock()
        except Exception:
            cameras = ", ".join(frame.camera for frame in batch)
            logger.exception("worker: a batch of %d frames (%s) failed", len(batch), cameras)
