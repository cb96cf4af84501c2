"""Lost rows per sink on /metrics: a client_python custom collector over the sink runner's own record.

``crowdwatch_sink_lost_rows_total{sink}`` counts the results a sink could not record (a CSV flush that
failed on a full disk loses every row it held; a snapshot that could not be written loses one), and
``crowdwatch_sink_up{sink}`` is 0 while the sink is failing (from its first loss until it next
succeeds). The numbers are read from :meth:`crowdwatch.sinks.runner.SinkRunner.status` at scrape time,
never kept twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from crowdwatch.sinks.runner import SinkStatus

__all__ = ["SinkLossCollector"]


class SinkLossCollector:
    """Exports the sinks' lost rows and up state; ``status`` returns the current :class:`SinkStatus` list
    (empty before the sinks start)."""

    def __init__(self, status: Callable[[], Sequence[SinkStatus]]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        lost = CounterMetricFamily(
            "crowdwatch_sink_lost_rows",
            "Results a sink could not record (e.g. CSV rows lost on a full disk)",
            labels=["sink"],
        )
        up = GaugeMetricFamily(
            "crowdwatch_sink_up", "1 while the sink records results, 0 while it is failing", labels=["sink"]
        )
        for status in self._status():
            lost.add_metric([status.sink], status.lost_rows)
            up.add_metric([status.sink], 0 if status.error is not None else 1)
        yield lost
        yield up

    def describe(self) -> Iterator[Metric]:
        return iter(())  # the series depend on the sinks the pipeline opened; no describe-time checks
