"""Telling the outside world how the pipeline is doing: Prometheus metrics, health, systemd.

- :mod:`crowdwatch.telemetry.counts`: the per-camera frame counters (the one copy), as a Prometheus collector.
- :mod:`crowdwatch.telemetry.metrics`: :class:`~crowdwatch.telemetry.metrics.PipelineMetrics`, the
  registry wiring and the callbacks the readers and the worker report to.
- :mod:`crowdwatch.telemetry.health`: the /healthz decision, from the readers' own camera states.
- :mod:`crowdwatch.telemetry.server`: the HTTP server for /metrics (client_python's handler) and /healthz.
- :mod:`crowdwatch.telemetry.notify`: systemd's sd_notify and the progress-gated watchdog pinger.
"""
