"""The MQTT sink: counts, alert states and availability (the box's and each camera's) on a broker.

The topics and payloads are in :mod:`crowdwatch.sinks.mqtt_messages`, Home Assistant's discovery configs
in :mod:`crowdwatch.sinks.homeassistant`, the connection (paho, TLS, the bounded outbox) in
:mod:`crowdwatch.sinks.mqtt_client`; this module decides what to send, and when.

On every (re)connect, before anything else, the sink says what is true now: ``online`` for the box,
each camera's ``status``, each alert zone's current state (retained, replacing whatever an earlier run
left) and, when enabled, the discovery configs. It also reads the retained messages under the site once
(a subscription until its own ``online`` comes back, which marks the end of what the broker held) and
clears, with an empty retained payload, every topic the current config no longer has: the counts and
alerts of removed cameras and zones, and their discovery configs.

:meth:`MqttSink.write` only turns a result into messages and queues them; a broker that is down, slow or
refuses the login never holds up the sink thread. A message that never reaches the broker is a loss of
the sink (:meth:`~crowdwatch.sinks.base.SinkBase.lose`, one of :data:`LOSS_REASONS`), counted with every
other sink's in ``crowdwatch_sink_lost_total``. These losses never make the sink *failing* (no
``error``), so they never turn /healthz ``degraded``: the broker is outside the box, the outbox exists to
ride out its absence, the CSV behind the same sink thread still records every result, and
``crowdwatch_mqtt_connected`` already shows the outage.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

from crowdwatch.config.mqtt import MqttSettings
from crowdwatch.errors import UsageError
from crowdwatch.frames import Result
from crowdwatch.sinks.base import SinkBase
from crowdwatch.sinks.homeassistant import discovery_filter, discovery_messages, node_id
from crowdwatch.sinks.mqtt_client import LOSS_REASONS, MqttClient, MqttEvents
from crowdwatch.sinks.mqtt_messages import (
    OFFLINE,
    ONLINE,
    Message,
    SiteLayout,
    SiteTopics,
    result_messages,
    retained_topics,
)
from crowdwatch.sinks.mqtt_state import RetainedSweep, SiteState

__all__ = ["LOSS_REASONS", "MqttSink"]

logger = logging.getLogger(__name__)


class MqttSink(SinkBase):
    """Publishes each result's counts and alert events under ``<topic_prefix>/<site>``.

    ``open`` starts the connection in the background (it never waits for the broker), ``write`` never
    blocks, ``close`` publishes ``offline`` and disconnects within
    :data:`~crowdwatch.sinks.mqtt_client.CLOSE_BUDGET_S`. ``layout`` is the site's cameras and zones:
    with it the sink says each camera's availability and each zone's alert state on every connect, clears
    what earlier configs left retained, and publishes Home Assistant discovery when
    ``settings.homeassistant.enabled``. Without it (tests of the transport alone) it only publishes
    results. Its losses count messages.
    """

    LOSS_REASONS = LOSS_REASONS  # the client's: why a message never reached the broker

    def __init__(
        self,
        settings: MqttSettings,
        site: str,
        *,
        layout: SiteLayout | None = None,
        events: MqttEvents | None = None,
    ) -> None:
        self.settings = settings
        self.site = site
        self.topics = SiteTopics(f"{settings.topic_prefix}/{site}")
        self.base = self.topics.base
        self.state = SiteState(self.topics, site, layout or SiteLayout(), settings.retain)
        self._discovery: list[Message] = []
        self._sweep: RetainedSweep | None = None
        if layout is not None:
            self._discovery, keep = self._kept_for(layout)
            ha = settings.homeassistant
            filters = [
                self.topics.everything,
                discovery_filter(ha.discovery_prefix, node_id(settings.topic_prefix, site)),
            ]
            self._sweep = RetainedSweep(filters, keep, Message(self.topics.status, ONLINE, True))
        self.client = MqttClient(
            settings,
            settings.client_id or f"crowdwatch-{site}-{os.getpid()}",
            Message(self.topics.status, OFFLINE, True),
            lose=self.lose,
            events=events,
            on_connect=self._on_connect,
            on_message=self._on_message,
            on_disconnect=self._on_disconnect,
        )

    # -- Sink ------------------------------------------------------------------------------------
    def open(self) -> None:
        self.client.start(note=f", topics under {self.base}/")

    def write(self, result: Result) -> None:
        self.state.note(result)
        self.client.send(list(result_messages(self.topics, self.site, result, self.settings.retain)))

    def close(self) -> None:
        """Deliver what is waiting (while connected), then every camera ``offline``, then the box."""
        self.client.close(farewell=self.state.on_close())

    def camera_status(self, camera: str, up: bool) -> None:
        """A camera went up or down (called from its reader's thread; never blocks): its retained
        ``status``, queued in order with the counts (nothing for a camera not in the layout)."""
        message = self.state.camera_changed(camera, up)
        if message is not None:
            self.client.send([message])

    def set_layout(self, layout: SiteLayout) -> None:
        """A config reload changed the cameras or zones (call on the sink thread, after the last result
        of the old layout). Removed cameras say ``offline`` and their counts, zones and alerts are
        cleared (an empty retained message); new cameras and alert zones get their first state; Home
        Assistant discovery follows. What a later reconnect sweeps follows the new layout too."""
        discovery, keep = self._kept_for(layout)
        messages = self.state.set_layout(layout)
        old_discovery = {message.topic for message in self._discovery}
        messages += [Message(topic, b"", True) for topic in sorted(old_discovery - keep)]
        messages += [message for message in discovery if message not in self._discovery]
        self._discovery = discovery
        if self._sweep is not None:
            self._sweep.keep = keep
        self.client.send(messages)

    # -- state, for telemetry and tests -----------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.client.connected

    def outbox_length(self) -> int:
        """Messages waiting: in the outbox, and handed to paho but not yet sent or acknowledged."""
        return self.client.outbox_length()

    # -- what to say on the client's events (paho's thread) ----------------------------------------
    def _on_connect(self) -> tuple[Sequence[str], list[Message]]:
        """Read what the broker retains for us (up to our ``online``), then say what is true now."""
        filters: Sequence[str] = ()
        if self._sweep is not None:
            self._sweep.start()
            filters = self._sweep.filters
        now = [Message(self.topics.status, ONLINE, True), *self.state.on_connect(time.time())]
        return filters, now + self._discovery

    def _on_message(self, topic: str, payload: bytes, retain: bool) -> None:
        if self._sweep is None:
            return
        stale = self._sweep.received(topic, payload, retain)
        if stale is None:
            return
        self.client.unsubscribe(self._sweep.filters)
        self.client.publish_now([Message(topic, b"", True) for topic in stale])
        if stale:
            shown = ", ".join(stale[:10]) + (f" and {len(stale) - 10} more" if len(stale) > 10 else "")
            logger.info("mqtt: cleared %d retained topic(s) the config no longer has: %s", len(stale), shown)

    def _on_disconnect(self) -> None:
        if self._sweep is not None:
            self._sweep.stop()

    def _kept_for(self, layout: SiteLayout) -> tuple[list[Message], set[str]]:
        """(discovery messages, every retained topic) of ``layout``."""
        discovery: list[Message] = []
        ha, s = self.settings.homeassistant, self.settings
        if ha.enabled:
            try:
                discovery = discovery_messages(ha.discovery_prefix, s.topic_prefix, self.site, layout.cameras)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        keep = retained_topics(self.topics, layout.cameras, s.retain)
        return discovery, keep | {message.topic for message in discovery}
