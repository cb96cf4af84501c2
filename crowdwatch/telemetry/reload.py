"""The outcome of the last config reload on /metrics, under the names Prometheus uses for its own:
``crowdwatch_config_last_reload_successful`` (1 or 0) and
``crowdwatch_config_last_reload_success_timestamp_seconds`` (wall clock of the last reload that took
effect; the start time until then, as Prometheus does). Alert on ``..._successful == 0``: the file on
disk is not what runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge

__all__ = ["ReloadMetrics"]


class ReloadMetrics:
    """Both gauges, registered in ``registry``; ``clock`` is wall-clock seconds (injectable for tests)."""

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.successful = Gauge(
            "crowdwatch_config_last_reload_successful",
            "1 when the last config reload (SIGHUP) took effect, 0 when it was refused or invalid.",
            registry=registry,
        )
        self.success_timestamp = Gauge(
            "crowdwatch_config_last_reload_success_timestamp_seconds",
            "Wall-clock time of the last config reload that took effect (the start time before any).",
            registry=registry,
        )
        self.successful.set(1)
        self.success_timestamp.set(clock())

    def reloaded(self, ok: bool) -> None:
        self.successful.set(1 if ok else 0)
        if ok:
            self.success_timestamp.set(self._clock())
