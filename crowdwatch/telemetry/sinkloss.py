"""What each sink lost, by reason, on /metrics: a client_python custom collector over the sink runner's
record.

``crowdwatch_sink_lost_total{sink, reason}`` counts the records a sink could not deliver: CSV rows of a
flush that failed on a full or read-only disk (``write_error``), MQTT messages dropped from the outbox
(``outbox_full``, ``connection_lost``, ``shutdown``), and for every sink the results whose ``write``
raised (``raised``: a snapshot or heatmap that could not be written). Every reason a sink declares is a
series from the start, at 0. ``crowdwatch_sink_up{sink}`` is 0 while the sink is failing (from a loss
that says why until the sink next succeeds). The numbers are read from
:meth:`crowdwatch.sinks.runner.SinkRunner.status` at scrape time, never kept twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from crowdwatch.sinks.runner import SinkStatus

__all__ = ["SinkLossCollector"]


class SinkLossCollector:
    """Exports the sinks' losses and up state; ``status`` returns the current :class:`SinkStatus` list
    (empty before the sinks start)."""

    def __init__(self, status: Callable[[], Sequence[SinkStatus]]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        lost = CounterMetricFamily(
            "crowdwatch_sink_lost",
            "Records a sink could not deliver, by reason (CSV rows, MQTT messages, results its write lost)",
            labels=["sink", "reason"],
        )
        up = GaugeMetricFamily(
            "crowdwatch_sink_up", "1 while the sink records results, 0 while it is failing", labels=["sink"]
        )
        for status in self._status():
            for reason, n in status.lost.items():
                lost.add_metric([status.sink, reason], n)
            up.add_metric([status.sink], 0 if status.error is not None else 1)
        yield lost
        yield up

    def describe(self) -> Iterator[Metric]:
        return iter(())  # the series depend on the sinks the pipeline opened; no describe-time checks
