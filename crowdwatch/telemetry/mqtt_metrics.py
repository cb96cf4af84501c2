"""Prometheus metrics of the MQTT sink, fed by its client's :class:`~crowdwatch.sinks.mqtt_client.MqttEvents`.

Registered only when ``mqtt.enabled``: a box without MQTT exports none of these. The sink itself knows
nothing of Prometheus; the pipeline hands it an :class:`MqttMetrics` as its events. Messages that never
reached the broker are the sink's losses, on ``crowdwatch_sink_lost_total{sink="mqtt", reason}`` with
every other sink's (:mod:`crowdwatch.telemetry.sinkloss`).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["MqttMetrics"]


class MqttMetrics:
    """``crowdwatch_mqtt_*``: connected, connections, messages published, outbox depth."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.connected = Gauge(
            "crowdwatch_mqtt_connected", "1 while connected to the MQTT broker.", registry=registry
        )
        self.connections = Counter(
            "crowdwatch_mqtt_connections_total",
            "Successful connections to the MQTT broker (the first and each reconnect).",
            registry=registry,
        )
        self.published = Counter(
            "crowdwatch_mqtt_published_messages_total",
            "MQTT messages delivered (QoS 0: written to the connection; QoS 1 and 2: acknowledged).",
            registry=registry,
        )
        self.outbox = Gauge(
            "crowdwatch_mqtt_outbox_messages",
            "MQTT messages waiting to be delivered (outbox, and sent but not yet acknowledged).",
            registry=registry,
        )

    def watch_outbox(self, size: Callable[[], int]) -> None:
        """Read the outbox depth from ``size`` at each scrape."""
        self.outbox.set_function(lambda: float(size()))

    # -- MqttEvents ------------------------------------------------------------------------------
    def mqtt_connected(self, connected: bool) -> None:
        self.connected.set(1 if connected else 0)
        if connected:
            self.connections.inc()

    def mqtt_published(self, n: int = 1) -> None:
        self.published.inc(n)
