"""Destinations for the worker's results: CSV rows, overlay snapshots/video, Prometheus metrics.

Import the concrete sinks from their modules (``crowdwatch.sinks.csv.CsvSink``,
``crowdwatch.sinks.overlay.OverlaySink``, ``crowdwatch.sinks.metrics.PipelineMetrics``).
"""

from crowdwatch.sinks.base import Result, Sink, SinkBase

__all__ = ["Result", "Sink", "SinkBase"]
