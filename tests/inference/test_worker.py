"""Worker: batching across cameras, sink isolation and overload accounting (via the sink runner)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crowdwatch.errors import InferenceUnavailable
from crowdwatch.frames import Frame, Result
from crowdwatch.inference.worker import FrameSource, PredictorLike, SiteChange, Worker
from crowdwatch.sinks.base import Sink, SinkBase
from crowdwatch.sinks.runner import SinkRunner
from crowdwatch.zones import CameraZones, Zone


def frame(camera: str, index: int = 0, size: tuple[int, int] = (32, 48)) -> Frame:
    image = np.full((*size, 3), index % 256, np.uint8)
    return Frame(camera=camera, image=image, index=index, captured_at=time.time(), monotonic=time.monotonic())


@dataclass
class FakePrediction:
    points: np.ndarray
    count: int


class FakePredictor:
    """Counts = the image's first pixel value / 10 points at (1, 1); records every batch."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.batches: list[list[tuple[int, int]]] = []
        self.delay_s = delay_s

    def predict(self, images: Sequence[np.ndarray]) -> list[FakePrediction]:
        self.batches.append([img.shape[:2] for img in images])
        time.sleep(self.delay_s)
        out = []
        for img in images:
            n = int(img[0, 0, 0]) // 10
            out.append(FakePrediction(np.ones((n, 2), np.float32), n))
        return out


class ListSource:
    def __init__(self, camera: str, frames: list[Frame] | None = None) -> None:
        self.camera_id = camera
        self.frames = list(frames or [])
        self.lock = threading.Lock()

    def take(self) -> Frame | None:
        with self.lock:
            return self.frames.pop(0) if self.frames else None


class Recorder(SinkBase):
    def __init__(self, delay_s: float = 0.0) -> None:
        self.rows: list[Result] = []
        self.delay_s = delay_s
        self.ticks = 0

    def write(self, result: Result) -> None:
        time.sleep(self.delay_s)
        self.rows.append(result)

    def tick(self) -> None:
        self.ticks += 1


class Events:
    def __init__(self) -> None:
        self.batches: list[int] = []
        self.published: list[Result] = []
        self.dropped: dict[tuple[str, str], int] = {}

    def batch_done(self, size: int, seconds: float) -> None:
        self.batches.append(size)

    def result_published(self, result: Result) -> None:
        self.published.append(result)

    def frame_dropped(self, camera: str, reason: str, n: int = 1) -> None:
        self.dropped[(camera, reason)] = self.dropped.get((camera, reason), 0) + n


class Fed:
    """A worker publishing to a sink runner, as the pipeline wires them; stops both."""

    def __init__(
        self,
        predictor: PredictorLike,
        sources: Sequence[FrameSource],
        sinks: Sequence[Sink],
        *,
        events: Events | None = None,
        queue_size: int = 32,
        max_batch: int = 4,
        max_wait_ms: float = 50.0,
    ) -> None:
        self.runner = SinkRunner(sinks, queue_size=queue_size)
        self.worker = Worker(
            predictor,
            sources,
            publish=self.runner.submit,
            events=events,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
        )

    def start(self) -> None:
        self.runner.start()
        self.worker.start()

    def stop(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        done = self.worker.stop(timeout)
        return self.runner.stop(deadline) and done


# -- Worker --------------------------------------------------------------------------------------
def test_process_applies_zones_and_publishes() -> None:
    events, published = Events(), []
    zones = {"a": CameraZones([Zone("all", np.array([[0, 0], [10, 0], [10, 10], [0, 10]]), high=3, low=1)])}
    worker = Worker(
        FakePredictor(), [], events=events, zones=zones, publish=lambda r: not published.append(r)
    )
    assert worker.last_progress_monotonic() is None
    results = worker.process([frame("a", 50), frame("b", 20)])
    assert [r.count for r in results] == [5, 2]
    assert results[0].zone_counts == {"all": 5} and results[0].zone_alerts == {"all": True}
    assert results[1].zone_counts == {}
    assert events.batches == [2] and len(events.published) == 2 and published == results
    assert worker.last_progress_monotonic() is not None
    assert all(r.latency_s >= 0 for r in results)


def test_worker_batches_cameras_and_delivers_every_frame_to_sinks() -> None:
    sources = [ListSource(c, [frame(c, i) for i in range(5)]) for c in "abc"]
    predictor, sink, events = FakePredictor(), Recorder(), Events()
    worker = Fed(predictor, sources, [sink], events=events, max_batch=4, max_wait_ms=20)
    worker.start()
    deadline = time.monotonic() + 10
    while len(events.published) < 15 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stop(timeout=5)
    assert len(sink.rows) == 15
    for camera in "abc":
        assert [r.index for r in sink.rows if r.camera == camera] == list(range(5))
    # Three cameras, each with a frame waiting: batches of 3 rather than a max_wait per frame.
    assert max(len(batch) for batch in predictor.batches) == 3
    assert all(len(batch) <= 3 for batch in predictor.batches)


def test_slow_sink_never_stalls_inference_and_overload_is_counted() -> None:
    source = ListSource("a", [frame("a", i) for i in range(60)])
    sink, events = Recorder(delay_s=0.05), Events()
    worker = Fed(FakePredictor(), [source], [sink], events=events, queue_size=4, max_wait_ms=0)
    started = time.monotonic()
    worker.start()
    while len(events.published) < 60 and time.monotonic() - started < 10:
        time.sleep(0.005)
    inference_done = time.monotonic() - started
    assert worker.stop(timeout=5)
    assert len(events.published) == 60
    assert inference_done < 60 * 0.05 / 2  # inference did not wait for the sink
    dropped = events.dropped.get(("a", "sink_overload"), 0)
    assert dropped > 0 and dropped + len(sink.rows) == 60


def test_a_failing_sink_does_not_stop_the_others() -> None:
    class Broken(SinkBase):
        def write(self, result: Result) -> None:
            raise OSError("disk full")

    good = Recorder()
    source = ListSource("a", [frame("a", i) for i in range(3)])
    worker = Fed(FakePredictor(), [source], [Broken(), good])
    worker.start()
    time.sleep(0.5)
    assert worker.stop(timeout=5)
    assert len(good.rows) == 3


def test_failing_batch_is_logged_and_worker_continues() -> None:
    class Flaky(FakePredictor):
        def predict(self, images: Sequence[np.ndarray]) -> list[FakePrediction]:
            if not self.batches:
                self.batches.append([])
                raise RuntimeError("boom")
            return super().predict(images)

    source = ListSource("a", [frame("a", 0)])
    events = Events()
    worker = Worker(Flaky(), [source], events=events, max_wait_ms=0)
    worker.start()
    time.sleep(0.2)
    source.frames.append(frame("a", 1))
    worker.wake.set()
    deadline = time.monotonic() + 5
    while not events.published and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stop(timeout=5)
    assert [r.index for r in events.published] == [1]


def test_a_pool_that_does_not_answer_drops_the_batch_without_a_row() -> None:
    """backend triton's fault (the real pool is in tests/system/test_triton_fleet.py): the batch's frames
    are dropped as inference_unavailable, nothing is published, and the worker still makes progress."""

    class Away(FakePredictor):
        def predict(self, images: Sequence[np.ndarray]) -> list[FakePrediction]:
            raise InferenceUnavailable("inference pool grpc://pool:8001 (p2pnet) unavailable: refused")

    source = ListSource("a", [frame("a", 0), frame("a", 1)])
    source_b = ListSource("b", [frame("b", 0)])
    events, sink = Events(), Recorder()
    worker = Fed(Away(), [source, source_b], [sink], events=events, max_wait_ms=0)
    worker.start()
    deadline = time.monotonic() + 5
    while sum(events.dropped.values()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stop(timeout=5)
    assert events.dropped == {("a", "inference_unavailable"): 2, ("b", "inference_unavailable"): 1}
    assert events.published == [] and sink.rows == []
    assert worker.worker.last_progress_monotonic() is not None  # deciding, not wedged: no watchdog restart


def test_stop_finishes_frames_already_taken() -> None:
    sink = Recorder()
    # Camera c never delivers, so a and b wait for max_wait (10 s) until stop() runs them.
    sources = [ListSource(c, [frame(c, 0)] if c != "c" else []) for c in "abc"]
    predictor = FakePredictor(delay_s=0.2)
    worker = Fed(predictor, sources, [sink], max_batch=4, max_wait_ms=10_000)
    worker.start()
    time.sleep(0.2)
    assert predictor.batches == []
    assert worker.stop(timeout=5)
    assert predictor.batches == [[(32, 48), (32, 48)]]
    assert sorted(r.camera for r in sink.rows) == ["a", "b"]


def test_sinks_tick_without_results() -> None:
    sink = Recorder()
    worker = Fed(FakePredictor(), [], [sink])
    worker.start()
    time.sleep(0.5)
    assert worker.stop(timeout=5)
    assert sink.ticks >= 2


class PointsPredictor:
    """Heads at fixed points: ``n`` inside the left half (x = 10) and one on the right (x = 40)."""

    def predict(self, images: Sequence[np.ndarray]) -> list[FakePrediction]:
        out = []
        for img in images:
            n = int(img[0, 0, 0])
            points = np.array([[10, 10]] * n + [[40, 10]], np.float32).reshape(-1, 2)
            out.append(FakePrediction(points, len(points)))
        return out


def test_results_carry_smoothed_counts_alert_events_and_no_excluded_points() -> None:
    left = np.array([[0, 0], [24, 0], [24, 32], [0, 32]], np.float32)
    poster = np.array([[35, 0], [48, 0], [48, 32], [35, 32]], np.float32)  # hides the point at x = 40
    zones = {
        "cam1": CameraZones([Zone("left", left, high=4, low=1, for_s=1.0)], exclusions=[poster], window_s=2)
    }
    worker = Worker(PointsPredictor(), [], zones=zones)
    t0 = 1_800_000_000.0
    results = []
    for i, n in enumerate([0, 0, 0, 0, 8, 8, 8, 8, 8, 8, 8, 8]):  # 2 frames/s
        image = np.full((32, 48, 3), n, np.uint8)
        results += worker.process([Frame("cam1", image, i, t0 + i / 2, time.monotonic())])
    assert [r.count for r in results] == [0] * 4 + [8] * 8  # the poster's head is never counted
    assert all(len(r.points) == r.count and (r.points[:, 0] < 35).all() for r in results)
    smoothed = [r.smoothed_count for r in results]
    assert smoothed[:4] == [0, 0, 0, 0] and smoothed[-1] == 8 and 0 < smoothed[5] < 8
    assert results[-1].zone_smoothed == {"left": 8}
    events = [(i, e) for i, r in enumerate(results) for e in r.alert_events]
    # Smoothed count >= 4 from t = 2.5 s (frame 5: 8 over 1 of 2 s), held 1 s: raised at frame 7.
    assert [(i, e.state, e.zone, e.threshold, e.at - t0, e.since - t0) for i, e in events] == [
        (7, "raised", "left", 4, 3.5, 2.5)
    ]
    assert [r.zone_alerts["left"] for r in results] == [False] * 7 + [True] * 5
    # A camera without zones still gets its smoothed count (window 0: the raw count).
    (plain,) = worker.process([Frame("cam2", np.full((32, 48, 3), 3, np.uint8), 0, t0, time.monotonic())])
    assert plain.smoothed_count == plain.count == 4 and plain.alert_events == ()


def test_a_site_change_waits_for_the_frames_in_flight_and_applies_between_batches() -> None:
    """Frames taken before a reload are processed under the zones they came with; the next ones under
    the new zones; a removed camera's source is no longer read, an added one is."""
    left = np.array([[0, 0], [24, 0], [24, 32], [0, 32]], np.float32)
    whole = np.array([[0, 0], [48, 0], [48, 32], [0, 32]], np.float32)
    old_zones = CameraZones([Zone("area", left)])
    keep, gone, new = ListSource("keep", [frame("keep", 3, (32, 48))]), ListSource("gone"), ListSource("new")
    published: list[Result] = []
    predictor = PointsPredictor()  # 3 heads at x = 10 (left half), one at x = 40
    # max_wait 10 s and a camera that never delivers: the first frame waits in the batcher
    worker = Worker(
        predictor, [keep, gone], zones={"keep": old_zones}, publish=lambda r: not published.append(r),
        max_wait_ms=10_000,
    )  # fmt: skip
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while worker.batcher.pending_cameras != {"keep"} and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.batcher.pending_cameras == {"keep"} and not published
        order: list[str] = []
        new_zones = CameraZones([Zone("area", whole)])
        change = SiteChange(
            sources=[keep, new],
            zones={"keep": new_zones},
            removed=["gone"],
            then=lambda: order.append(f"then after {len(published)} result(s)"),
        )
        assert worker.apply(change)
        assert order == ["then after 1 result(s)"]  # the frame in flight went first
        assert published[0].zone_counts == {"area": 3}  # under the old zones
        gone.frames.append(frame("gone", 1, (32, 48)))
        keep.frames.append(frame("keep", 3, (32, 48)))
        new.frames.append(frame("new", 3, (32, 48)))
        worker.wake.set()
        while len(published) < 3 and time.monotonic() < deadline + 5:
            time.sleep(0.01)
    finally:
        assert worker.stop(timeout=5)
    later = {r.camera: r for r in published[1:]}
    assert set(later) == {"keep", "new"} and gone.frames  # `gone` is no longer read
    assert later["keep"].zone_counts == {"area": 4}  # under the new zones
    assert worker.zones["keep"] is new_zones and "gone" not in worker.zones
