"""How the MQTT sink talks to a broker: one connection's life (connect, reconnect, what it says about
them), and a publisher thread that feeds the bounded outbox to paho. What to say, and when, is the
sink's (:mod:`crowdwatch.sinks.mqtt`); paho's setup and TLS are in :mod:`crowdwatch.sinks.mqtt_paho`,
the outbox in :mod:`crowdwatch.sinks.mqtt_outbox`.

A broker that is down, slow or refuses the login must never hold up the sink thread (and so the CSV
and snapshots behind it): :meth:`MqttClient.send` only appends to the outbox (the oldest message goes
when it is full). The publisher thread hands the outbox to paho while connected, keeping at most
:data:`~crowdwatch.sinks.mqtt_outbox.MAX_HANDED` messages inside paho (sent but not yet acknowledged),
so paho's own queues stay bounded too. A message that never reaches the broker is reported to ``lose``
with one of :data:`LOSS_REASONS`; connections and publications go to :class:`MqttEvents`. Nothing here
knows Prometheus.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from crowdwatch.config.mqtt import MqttSettings
from crowdwatch.logthrottle import LogThrottle
from crowdwatch.sinks.mqtt_messages import Message
from crowdwatch.sinks.mqtt_outbox import Outbox
from crowdwatch.sinks.mqtt_paho import PahoClient, paho_client, refused_hint, unreachable_reason

__all__ = ["CLOSE_BUDGET_S", "LOSS_REASONS", "MqttClient", "MqttEvents", "NullMqttEvents"]

logger = logging.getLogger(__name__)

#: Why a message never reached the broker: the outbox was full (the oldest went), the connection
#: dropped under a QoS 0 message paho had not sent yet, or the process stopped while it waited.
LOSS_REASONS = ("outbox_full", "connection_lost", "shutdown")
#: The longest close() takes: the outbox drains while connected, then the farewell, then disconnect.
CLOSE_BUDGET_S = 2.0

#: On each connect (paho's thread): the topic filters to subscribe to, then the messages to send ahead
#: of the outbox.
OnConnect = Callable[[], tuple[Sequence[str], Sequence[Message]]]


class MqttEvents(Protocol):
    """What the client reports (implemented by :class:`crowdwatch.telemetry.mqtt_metrics.MqttMetrics`).

    Called from the sink's, the publisher's and paho's threads: implementations must be thread-safe.
    """

    def mqtt_connected(self, connected: bool) -> None: ...

    def mqtt_published(self, n: int = 1) -> None: ...


class NullMqttEvents:
    def mqtt_connected(self, connected: bool) -> None:
        pass

    def mqtt_published(self, n: int = 1) -> None:
        pass


class MqttClient:
    """One connection to ``settings``' broker, with ``will`` as its last will.

    :meth:`start` connects in the background (it never waits for the broker), :meth:`send` never blocks,
    :meth:`close` sends a farewell and disconnects within :data:`CLOSE_BUDGET_S`. The hooks run on paho's
    thread: ``on_connect`` on every (re)connect, ``on_message`` for what a subscription brings,
    ``on_disconnect`` when a connection goes; ``lose(n, reason)`` counts undelivered messages.
    """

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        will: Message,
        *,
        lose: Callable[[int, str], None],
        events: MqttEvents | None = None,
        on_connect: OnConnect,
        on_message: Callable[[str, bytes, bool], None],
        on_disconnect: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.will = will
        self.where = f"{settings.host}:{settings.effective_port}"
        self.events: MqttEvents = events if events is not None else NullMqttEvents()
        self._lose = lose
        self._connect_hook, self._message_hook, self._disconnect_hook = on_connect, on_message, on_disconnect
        self._outbox = Outbox(settings.outbox_size)
        self._paho: PahoClient | None = None
        self._publisher: threading.Thread | None = None
        self._away_since: float | None = None  # since when a connection that we had is gone (paho's thread)
        self._log = LogThrottle(logger)  # a broker away or refusing: reported again once a minute

    @property
    def connected(self) -> bool:
        return self._outbox.connected

    def outbox_length(self) -> int:
        """Messages waiting: in the outbox, and handed to paho but not yet sent or acknowledged."""
        return len(self._outbox)

    def start(self, note: str = "") -> None:
        """Connect in the background; a TLS file that cannot be loaded is a :class:`UsageError`. ``note``
        ends the log line that says so."""
        if self._paho is not None:
            return
        s = self.settings
        client = paho_client(s, self.client_id, self.will)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.connect_async(s.host, s.effective_port, keepalive=s.keepalive_s)
        self._paho = client
        self._publisher = threading.Thread(target=self._publish_loop, name="mqtt-publisher", daemon=True)
        logger.info(
            "mqtt: connecting to %s%s as %s (user %s)%s",
            self.where,
            " with TLS" if s.tls.enabled else "",
            self.client_id,
            s.username or "none",
            note,
        )
        self._publisher.start()
        client.loop_start()

    def send(self, messages: Sequence[Message]) -> None:
        """Queue ``messages`` behind those waiting (never blocks; the oldest go when the outbox is full)."""
        dropped = self._outbox.put(messages)
        if dropped:
            self._lose(dropped, "outbox_full")
            self._log.log(
                "outbox_full",
                logging.WARNING,
                "mqtt: outbox full (%d messages) while broker %s is away or slow: dropping the oldest",
                self.settings.outbox_size,
                self.where,
            )

    def publish_now(self, messages: Sequence[Message]) -> None:
        """Hand ``messages`` to paho ahead of the outbox (paho's thread: in the hooks)."""
        client = self._paho
        if client is None:
            return
        qos = self.settings.qos
        for message in messages:
            info = client.publish(message.topic, message.payload, qos=qos, retain=message.retain)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._outbox.handed(info.mid, qos)

    def unsubscribe(self, topic_filters: Sequence[str]) -> None:
        if self._paho is not None:
            self._paho.unsubscribe(list(topic_filters))

    def close(self, farewell: Sequence[Message] = ()) -> None:
        """Let the outbox drain while connected, send ``farewell`` then the will's payload (a clean goodbye),
        disconnect; what is still waiting is lost (``shutdown``)."""
        client = self._paho
        if client is None or self._outbox.stopping:
            return
        deadline = time.monotonic() + CLOSE_BUDGET_S
        self._outbox.drain(deadline - 0.7)  # what is waiting goes while the broker is there
        if self._publisher is not None:
            self._publisher.join(max(0.0, deadline - 0.6 - time.monotonic()))
        if self._outbox.connected:
            qos = self.settings.qos
            for message in farewell:
                client.publish(message.topic, message.payload, qos=qos, retain=message.retain)
            will = self.will
            info = client.publish(will.topic, will.payload, qos=qos, retain=will.retain)
            try:
                info.wait_for_publish(max(0.05, deadline - 0.3 - time.monotonic()))
            except (RuntimeError, ValueError):
                pass  # the connection went meanwhile: the broker publishes our will instead
        left = self._outbox.clear()
        self._paho = None
        if left:
            self._lose(left, "shutdown")
            logger.warning("mqtt: stopping with %d message(s) not delivered to %s", left, self.where)
        if self._outbox.connected:
            client.disconnect()  # a clean DISCONNECT: the broker discards our will (we said it ourselves)
        stopper = threading.Thread(target=client.loop_stop, name="mqtt-stop", daemon=True)
        stopper.start()  # loop_stop joins paho's thread, which may sit in a connect attempt
        stopper.join(max(0.1, deadline - time.monotonic()))
        self._outbox.set_connected(False)
        self.events.mqtt_connected(False)

    # -- the publisher thread ---------------------------------------------------------------------
    def _publish_loop(self) -> None:
        qos = self.settings.qos
        while (message := self._outbox.take()) is not None:
            client = self._paho
            if client is None:
                return
            info = client.publish(message.topic, message.payload, qos=qos, retain=message.retain)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._outbox.handed(info.mid, qos)
                continue
            # Not connected after all (the connection dropped a moment ago): paho keeps a QoS 1/2
            # message and sends it after the reconnect, a QoS 0 one comes back to the front here.
            if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0:
                self._outbox.handed(info.mid, qos)
            elif not self._outbox.put_back(message):
                self._lose(1, "outbox_full")
            self._outbox.pause(0.1)  # for paho to report the disconnection, rather than spin

    # -- paho callbacks (paho's network thread) ---------------------------------------------------
    def _on_connect(
        self, client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _properties: Any
    ) -> None:
        if self._outbox.stopping:  # a reconnect that raced close(): we are going, say nothing more
            client.disconnect()
            return
        if reason.is_failure:
            self._log.log(
                "refused",
                logging.ERROR,
                "mqtt: broker %s refused the connection: %s %s; retrying with backoff up to %g s",
                self.where,
                reason,
                refused_hint(reason, self.settings, self.client_id),
                self.settings.reconnect.max_s,
            )
            return
        topic_filters, first = self._connect_hook()
        if topic_filters:
            client.subscribe([(topic_filter, 0) for topic_filter in topic_filters])
        lost = self._outbox.forget_unsent_qos0()
        self.publish_now(first)
        self._outbox.set_connected(True)
        away, self._away_since = self._away_since, None
        if lost:
            self._lose(lost, "connection_lost")
        self.events.mqtt_connected(True)
        for key in ("refused", "unreachable"):  # a new outage is reported at once
            self._log.reset(key)
        if away is None:
            logger.info("mqtt: connected to %s as %s", self.where, self.client_id)
        else:  # once a minute at most for a flapping link (crowdwatch_mqtt_connections_total counts all)
            again = "mqtt: connected to %s again after %.1f s away"
            self._log.log("reconnected", logging.INFO, again, self.where, time.monotonic() - away)

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        self._message_hook(message.topic, bytes(message.payload), bool(message.retain))

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _properties: Any
    ) -> None:
        self._disconnect_hook()
        was_connected, waiting = self._outbox.set_connected(False)
        if self._away_since is None:
            self._away_since = time.monotonic()
        if was_connected:
            self.events.mqtt_connected(False)
            if not self._outbox.stopping:
                self._log.log(
                    "lost",
                    logging.WARNING,
                    "mqtt: lost the connection to %s (%s); reconnecting, backoff %g-%g s, %d message(s) "
                    "waiting (outbox holds %d)",
                    self.where,
                    reason,
                    self.settings.reconnect.initial_s,
                    self.settings.reconnect.max_s,
                    waiting,
                    self.settings.outbox_size,
                )

    def _on_connect_fail(self, client: paho.Client, _userdata: Any) -> None:
        if self._outbox.stopping:
            return
        error = getattr(client, "last_error", None)
        self._log.log(
            "unreachable",
            logging.WARNING,
            "mqtt: cannot reach broker %s: %s; retrying with backoff up to %g s (results keep flowing "
            "to the other sinks; up to %d MQTT messages are kept)",
            self.where,
            unreachable_reason(error),
            self.settings.reconnect.max_s,
            self.settings.outbox_size,
        )

    def _on_publish(
        self, _client: paho.Client, _userdata: Any, mid: int, _reason: ReasonCode, _properties: Any
    ) -> None:
        self._outbox.done(mid)
        self.events.mqtt_published()
