"""The inference worker: one shared model, dynamic batching across cameras, results handed to sinks.

The worker takes at most one frame per camera from the readers' latest-frame slots (a camera whose
frame is already waiting in a batch is not asked again, so its reader keeps only the newest frame and
counts the older one as superseded), and runs the batches the :class:`~crowdwatch.inference.batcher.Batcher`
makes (frames of one size; full, waited ``max_wait_ms``, or every camera waiting).

Results go out through ``publish`` (in the pipeline, :meth:`~crowdwatch.sinks.runner.SinkRunner.submit`:
a bounded queue drained by the sink thread), so a slow disk never stalls inference; a result that
``publish`` refuses is dropped and counted (``frames_dropped_total{reason="sink_overload"}``). Metrics
are updated on the inference thread (in-memory, microseconds), so gauges and counters stay exact even
when the sinks fall behind.

A config reload reaches the worker as a :class:`SiteChange` (:meth:`Worker.apply`): the inference
thread first finishes every frame it has already taken, under the zones they were taken with, and only
then swaps its cameras and zones, between two batches. No batch ever mixes two configs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from crowdwatch.errors import InferenceUnavailable
from crowdwatch.flow import CameraFlow
from crowdwatch.frames import Frame, Result
from crowdwatch.inference.batcher import Batcher
from crowdwatch.zones import CameraZones

__all__ = [
    "FrameSource",
    "NullWorkerEvents",
    "PredictorLike",
    "Publish",
    "SiteChange",
    "Worker",
    "WorkerEvents",
]

logger = logging.getLogger(__name__)

#: How often :meth:`Worker.apply` checks that the inference thread still lives while it waits.
APPLY_POLL_S = 1.0


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


#: Hands a result on (to the sink runner's queue); False when it was refused and is lost.
Publish = Callable[[Result], bool]


@dataclass(frozen=True)
class SiteChange:
    """What a config reload changes for the worker, applied between two batches (:meth:`Worker.apply`).

    ``sources`` is the new list of cameras to take frames from (kept readers and new ones); ``zones``
    replaces the entries of the cameras it names (a camera's zones object, with whatever state it
    carried over); ``removed`` are the cameras whose zones go. ``then`` runs on the inference thread
    right after the swap, before any frame of the new config is processed (the pipeline uses it to
    change the metrics and to queue the sinks' own change behind the last result of the old config).
    """

    sources: Sequence[FrameSource]
    zones: Mapping[str, CameraZones] = field(default_factory=dict)
    flows: Mapping[str, CameraFlow] = field(default_factory=dict)
    removed: Sequence[str] = ()
    then: Callable[[], None] | None = None


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
    inside an exclusion are removed from the result before anyone sees them. ``flows`` maps a camera id
    to its tracker, counting lines and zone stays (fed the counted points). ``events`` receives
    metrics. ``publish`` hands each result on (the pipeline's sink runner; None: results are only
    returned by :meth:`process` and reported to ``events``).
    """

    def __init__(
        self,
        predictor: PredictorLike,
        sources: Sequence[FrameSource],
        *,
        publish: Publish | None = None,
        events: WorkerEvents | None = None,
        zones: Mapping[str, CameraZones] | None = None,
        flows: Mapping[str, CameraFlow] | None = None,
        max_batch: int = 4,
        max_wait_ms: float = 50.0,
        wake: threading.Event | None = None,
        poll_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.predictor = predictor
        self.sources = list(sources)
        self._publish_to = publish
        self.events: WorkerEvents = events if events is not None else NullWorkerEvents()
        self.zones = dict(zones or {})
        self.flows = {camera: flow for camera, flow in (flows or {}).items() if flow.enabled}
        self.batcher = Batcher(max_batch, max_wait_ms / 1000.0, cameras=len(self.sources) or None)
        self.wake = wake if wake is not None else threading.Event()
        self.poll_s = poll_s
        self._clock = clock
        self._changes: list[tuple[SiteChange, threading.Event]] = []  # reloads for the inference thread
        self._changes_lock = threading.Lock()
        self._stop = threading.Event()
        self._last_progress: float | None = None
        self._busy = False  # inside predictor.predict
        self._inference = threading.Thread(target=self._run_inference, name="worker", daemon=True)
        self.batches = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._inference.start()

    def stop(self, timeout: float = 8.0) -> bool:
        """Finish the batch in flight and the frames waiting; True if all finished within ``timeout``."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self.wake.set()
        if self._inference.is_alive():
            self._inference.join(max(0.0, deadline - time.monotonic()))
        return not self._inference.is_alive()

    def apply(self, change: SiteChange) -> bool:
        """Apply ``change`` on the inference thread between two batches, after every frame already
        taken has been processed under the old zones, and wait until it is applied (True): however
        long the batch in flight takes, for as long as the thread lives (False if it ended first,
        with the change not applied). Before :meth:`start` it is applied at once, on the caller's
        thread."""
        if self._inference.ident is None:
            self._apply_now(change)
            return True
        done = threading.Event()
        with self._changes_lock:
            self._changes.append((change, done))
        self.wake.set()
        while not done.wait(APPLY_POLL_S):
            if not self._inference.is_alive():
                return done.is_set()
        return True

    @property
    def busy(self) -> bool:
        """True while a batch is inside the model (what a stop that cannot wait leaves behind)."""
        return self._busy

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
            kept = points[reading.kept] if excluded else points
            flow = self.flows.get(frame.camera)
            result = Result(
                camera=frame.camera,
                index=int(frame.index),
                captured_at=frame.captured_at,
                image=frame.image,
                points=kept,
                count=max(0, int(prediction.count) - excluded),
                latency_s=max(0.0, self._clock() - frame.monotonic),
                zone_counts=reading.counts,
                zone_alerts=reading.alerts,
                smoothed_count=reading.smoothed,
                zone_smoothed=reading.zone_smoothed,
                alert_events=reading.changes,
                flow=None if flow is None else flow.update(kept, frame.captured_at),
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
        if self._publish_to is not None and not self._publish_to(result):
            self.events.frame_dropped(result.camera, "sink_overload")

    def _apply_pending_changes(self) -> None:
        """Reloads asked for since the last turn: finish the frames taken under the old config, swap."""
        with self._changes_lock:
            changes, self._changes = self._changes, []
        if not changes:
            return
        for batch in self.batcher.pop_all():  # frames in flight finish under the config they came with
            self._process_safely(batch)
        for change, done in changes:
            try:
                self._apply_now(change)
            except Exception:
                logger.exception("worker: applying a config change failed")
            finally:
                done.set()

    def _apply_now(self, change: SiteChange) -> None:
        self.sources = list(change.sources)
        for camera in change.removed:
            self.zones.pop(camera, None)
            self.flows.pop(camera, None)
        self.zones.update(change.zones)
        for camera, flow in change.flows.items():  # a camera whose new config has no flow has none
            if flow.enabled:
                self.flows[camera] = flow
            else:
                self.flows.pop(camera, None)
        self.batcher.cameras = len(self.sources) or None
        if change.then is not None:
            change.then()

    def _run_inference(self) -> None:
        try:
            while not self._stop.is_set():
                self.wake.clear()
                self._apply_pending_changes()
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
            self._apply_pending_changes()  # a reload that raced the stop still completes
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
