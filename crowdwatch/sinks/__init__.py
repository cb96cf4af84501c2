"""Destinations for the worker's results (CSV rows, overlay snapshots/video) and the thread that feeds them.

Import the concrete sinks from their modules (``crowdwatch.sinks.csv.CsvSink``,
``crowdwatch.sinks.overlay.OverlaySink``); :mod:`crowdwatch.sinks.runner` runs them behind a bounded
queue. Prometheus metrics are not a sink: they are in :mod:`crowdwatch.telemetry`.
"""

from crowdwatch.sinks.base import Sink, SinkBase

__all__ = ["Sink", "SinkBase"]
