"""The reload gauges: Prometheus's own names, success timestamp only on success."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from crowdwatch.telemetry.reload import ReloadMetrics


def test_the_gauges_follow_each_reload_and_the_timestamp_only_successes() -> None:
    registry, now = CollectorRegistry(), [1000.0]
    metrics = ReloadMetrics(registry, clock=lambda: now[0])
    value = registry.get_sample_value
    assert value("crowdwatch_config_last_reload_successful") == 1  # the config running is the file's
    assert value("crowdwatch_config_last_reload_success_timestamp_seconds") == 1000.0
    now[0] = 1010.0
    metrics.reloaded(False)
    assert value("crowdwatch_config_last_reload_successful") == 0
    assert value("crowdwatch_config_last_reload_success_timestamp_seconds") == 1000.0
    now[0] = 1020.0
    metrics.reloaded(True)
    assert value("crowdwatch_config_last_reload_successful") == 1
    assert value("crowdwatch_config_last_reload_success_timestamp_seconds") == 1020.0
