"""Per-camera frame counters, kept once: exported as Prometheus counters and read by the pipeline.

The counts live here, not in the Prometheus client's counters: the pipeline's status line and its
final summary read them with :meth:`FrameCounts.get`, and :meth:`FrameCounts.collect` (a client_python
custom collector) exposes the same numbers on /metrics. Nothing reads numbers back out of the registry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, Metric

__all__ = ["DROP_REASONS", "CameraCounts", "FrameCounts"]

#: Why a frame or result was dropped (every camera has each series from the start, at 0).
DROP_REASONS = (
    "superseded",
    "sink_overload",
    "decode_error",
    "stalled",
    "oversized",
    "inference_unavailable",
)


@dataclass
class CameraCounts:
    """One camera's counters (a copy when it comes from :meth:`FrameCounts.get`)."""

    read: int = 0
    processed: int = 0
    reconnects: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))


class FrameCounts:
    """Thread-safe per-camera counters; a Prometheus collector for ``crowdwatch_frames_*_total`` and
    ``crowdwatch_reconnects_total``, without ``_created`` samples (the pipeline turns them off for the
    client's own counters too: nothing reads them)."""

    def __init__(self, cameras: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, CameraCounts] = {}
        for camera in cameras:
            self._camera(camera)

    def add_read(self, camera: str) -> None:
        with self._lock:
            self._camera(camera).read += 1

    def add_processed(self, camera: str) -> None:
        with self._lock:
            self._camera(camera).processed += 1

    def add_reconnect(self, camera: str) -> None:
        with self._lock:
            self._camera(camera).reconnects += 1

    def add_dropped(self, camera: str, reason: str, n: int = 1) -> None:
        with self._lock:
            dropped = self._camera(camera).dropped
            dropped[reason] = dropped.get(reason, 0) + n

    def add_camera(self, camera: str) -> None:
        """Give a camera added by a reload its series now, at 0."""
        with self._lock:
            self._camera(camera)

    def remove(self, camera: str) -> None:
        """Forget ``camera`` (removed from the config by a reload): its series leave /metrics."""
        with self._lock:
            self._counts.pop(camera, None)

    def get(self, camera: str) -> CameraCounts:
        """A copy of ``camera``'s counters (all 0 for a camera never heard of)."""
        with self._lock:
            counts = self._counts.get(camera, CameraCounts())
            return CameraCounts(counts.read, counts.processed, counts.reconnects, dict(counts.dropped))

    # -- prometheus_client Collector ----------------------------------------------------------------
    def describe(self) -> list[Metric]:
        return list(self._families(()))

    def collect(self) -> list[Metric]:
        with self._lock:  # a consistent snapshot, built before any of it is yielded to the registry
            return list(self._families(self._counts.items()))

    def _families(self, counts: Iterable[tuple[str, CameraCounts]]) -> Iterator[Metric]:
        """The four counter families, with one sample per camera (and reason) in ``counts``."""
        read = CounterMetricFamily(
            "crowdwatch_frames_read_total", "Frames decoded from the camera.", labels=["camera"]
        )
        processed = CounterMetricFamily(
            "crowdwatch_frames_processed_total", "Frames run through the model.", labels=["camera"]
        )
        dropped = CounterMetricFamily(
            "crowdwatch_frames_dropped_total",
            "Frames or results dropped, by reason.",
            labels=["camera", "reason"],
        )
        reconnects = CounterMetricFamily(
            "crowdwatch_reconnects_total", "Reconnection attempts to the camera.", labels=["camera"]
        )
        for camera, c in counts:
            read.add_metric([camera], c.read)
            processed.add_metric([camera], c.processed)
            for reason, n in c.dropped.items():
                dropped.add_metric([camera, reason], n)
            reconnects.add_metric([camera], c.reconnects)
        yield from (read, processed, dropped, reconnects)

    def _camera(self, camera: str) -> CameraCounts:
        """The camera's counters, created at 0 on first use (call with the lock held)."""
        counts = self._counts.get(camera)
        if counts is None:
            counts = self._counts[camera] = CameraCounts()
        return counts
