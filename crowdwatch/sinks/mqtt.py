"""The MQTT sink: counts, alert states and availability (the box's and each camera's) on a broker.

The topics and payloads are in :mod:`crowdwatch.sinks.mqtt_messages`, Home Assistant's discovery configs
in :mod:`crowdwatch.sinks.homeassistant`; this module decides when to send them and sends them.

On every (re)connect, before anything else, the sink says what is true now: ``online`` for the box,
each camera's ``status``, each alert zone's current state (retained, replacing whatever an earlier run
left) and, when enabled, the discovery configs. It also reads the retained messages under the site once
(a subscription until its own ``online`` comes back, which marks the end of what the broker held) and
clears, with an empty retained payload, every topic the current config no longer has: the counts and
alerts of removed cameras and zones, and their discovery configs.

paho-mqtt is the client: the Eclipse project's maintained Python client, with TLS, last will, QoS 0-2
and its own network thread that reconnects with a doubling backoff. A broker that is down, slow or
refuses the login must never hold up the sink thread (and so the CSV and snapshots behind it):
:meth:`MqttSink.write` only turns a result into messages and appends them to a bounded outbox (the
oldest message goes when it is full, counted). A publisher thread of ours feeds the outbox to paho while
connected, keeping at most :data:`MAX_HANDED` messages inside paho (sent but not yet acknowledged), so
paho's own queues stay bounded too. Nothing here knows Prometheus: :class:`MqttEvents` reports
connections and publications (``crowdwatch.telemetry.mqtt_metrics`` turns them into metrics), and a
message that never reaches the broker is a loss of the sink (:meth:`SinkBase.lose`, one of
:data:`LOSS_REASONS`), counted with every other sink's in ``crowdwatch_sink_lost_total``.

Losses never make the sink *failing* (no ``error``), so they never turn /healthz ``degraded``: the
broker is outside the box, the outbox exists to ride out its absence, the CSV behind the same sink
thread still records every result, and ``crowdwatch_mqtt_connected`` already shows the outage.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections import deque
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from crowdwatch.config.mqtt import MqttSettings, TlsFileError, tls_context
from crowdwatch.errors import UsageError
from crowdwatch.frames import Result
from crowdwatch.logthrottle import LogThrottle
from crowdwatch.sinks.base import SinkBase
from crowdwatch.sinks.homeassistant import discovery_filter, discovery_messages, node_id
from crowdwatch.sinks.mqtt_messages import (
    OFFLINE,
    ONLINE,
    Message,
    SiteLayout,
    SiteTopics,
    alert_payload,
    result_messages,
    retained_topics,
)
from crowdwatch.sinks.mqtt_state import RetainedSweep, SiteState

__all__ = [
    "CLOSE_BUDGET_S",
    "LOSS_REASONS",
    "MAX_HANDED",
    "Message",
    "MqttEvents",
    "MqttSink",
    "NullMqttEvents",
    "SiteLayout",
    "alert_payload",
]

logger = logging.getLogger(__name__)

#: Why a message never reached the broker: the outbox was full (the oldest went), the connection
#: dropped under a QoS 0 message paho had not sent yet, or the process stopped while it waited.
LOSS_REASONS = ("outbox_full", "connection_lost", "shutdown")
#: Most messages handed to paho and not yet sent (QoS 0) or acknowledged (QoS 1, 2).
MAX_HANDED = 1000
#: Of those, most QoS 1/2 messages on the wire unacknowledged at once. Brokers cap what they accept
#: from one client (mosquitto's max_inflight_messages, 20 by default, answers the 21st QoS 2 message with
#: "quota exceeded" and drops the connection), so stay at that common default.
MAX_INFLIGHT = 20
#: The longest close() takes: the outbox drains while connected, then ``offline``, then disconnect.
CLOSE_BUDGET_S = 2.0

_AUTH_FAILURES = {"Bad user name or password", "Not authorized"}


class MqttEvents(Protocol):
    """What the sink reports (implemented by :class:`crowdwatch.telemetry.mqtt_metrics.MqttMetrics`).

    Called from the sink's, the publisher's and paho's threads: implementations must be thread-safe.
    """

    def mqtt_connected(self, connected: bool) -> None: ...

    def mqtt_published(self, n: int = 1) -> None: ...


class NullMqttEvents:
    def mqtt_connected(self, connected: bool) -> None:
        pass

    def mqtt_published(self, n: int = 1) -> None:
        pass


class _Client(paho.Client):
    """paho's client, remembering why the last connection attempt failed (paho only says that it did)."""

    last_error: OSError | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as exc:
            self.last_error = exc
            raise


class MqttSink(SinkBase):
    """Publishes each result's counts and alert events under ``<topic_prefix>/<site>``.

    ``open`` starts the connection in the background (it never waits for the broker), ``write`` never
    blocks, ``close`` publishes ``offline`` and disconnects within :data:`CLOSE_BUDGET_S`.
    ``layout`` is the site's cameras and zones: with it the sink says each camera's availability and
    each zone's alert state on every connect, clears what earlier configs left retained, and publishes
    Home Assistant discovery when ``settings.homeassistant.enabled``. Without it (tests of the
    transport alone) it only publishes results. Its losses count messages.
    """

    LOSS_REASONS = LOSS_REASONS

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
        self.status_topic = self.topics.status
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
            self._sweep = RetainedSweep(filters, keep, Message(self.status_topic, ONLINE, True))
        self.events: MqttEvents = events if events is not None else NullMqttEvents()
        self.client_id = settings.client_id or f"crowdwatch-{site}-{os.getpid()}"
        self.where = f"{settings.host}:{settings.effective_port}"
        self._cond = threading.Condition()
        self._outbox: deque[Message] = deque()
        self._handed: dict[int, int] = {}  # mid -> QoS: inside paho, not yet sent or acknowledged
        self._early: set[int] = set()  # mids paho finished before publish() returned to us
        self._connected = False
        self._stopping = False
        self._client: _Client | None = None
        self._publisher: threading.Thread | None = None
        self._away_since: float | None = None  # since when a connection that we had is gone
        self._log = LogThrottle(logger)  # a broker away or refusing: reported again once a minute

    # -- Sink ------------------------------------------------------------------------------------
    def open(self) -> None:
        if self._client is not None:
            return
        s = self.settings
        client = _Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True, protocol=paho.MQTTv311
        )
        client.suppress_exceptions = True  # a bug in a callback must not end paho's network thread
        paho_logger = logger.getChild("paho")
        paho_logger.setLevel(logging.ERROR)  # its warnings repeat ours; errors are bugs in callbacks
        paho_logger.addFilter(_drop_idle_loop_noise)
        client.enable_logger(paho_logger)
        if s.username is not None:
            password = s.password.get_secret_value() if s.password is not None else None
            client.username_pw_set(s.username, password)
        if s.tls.enabled:
            client.tls_set_context(self._tls_context())
            if s.tls.insecure:
                client.tls_insecure_set(True)
        client.will_set(self.status_topic, OFFLINE, qos=s.qos, retain=True)
        client.reconnect_delay_set(min_delay=s.reconnect.initial_s, max_delay=s.reconnect.max_s)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.connect_timeout = s.connect_timeout_s
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.connect_async(s.host, s.effective_port, keepalive=s.keepalive_s)
        self._client = client
        self._publisher = threading.Thread(target=self._publish_loop, name="mqtt-publisher", daemon=True)
        logger.info(
            "mqtt: connecting to %s%s as %s (user %s), topics under %s/",
            self.where,
            " with TLS" if s.tls.enabled else "",
            self.client_id,
            s.username or "none",
            self.base,
        )
        self._publisher.start()
        client.loop_start()

    def write(self, result: Result) -> None:
        self.state.note(result)
        # encoded before taking the lock the publisher shares
        self._enqueue(list(result_messages(self.topics, self.site, result, self.settings.retain)))

    def camera_status(self, camera: str, up: bool) -> None:
        """A camera went up or down (called from its reader's thread; never blocks): its retained
        ``status``, queued in order with the counts (nothing for a camera not in the layout)."""
        message = self.state.camera_changed(camera, up)
        if message is not None:
            self._enqueue([message])

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
        self._enqueue(messages)

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

    def _enqueue(self, messages: list[Message]) -> None:
        dropped = 0
        with self._cond:
            for message in messages:
                if len(self._outbox) >= self.settings.outbox_size:
                    self._outbox.popleft()
                    dropped += 1
                self._outbox.append(message)
            self._cond.notify_all()
        if dropped:
            self.lose(dropped, "outbox_full")
            self._log_every(
                "outbox_full",
                logging.WARNING,
                "mqtt: outbox full (%d messages) while broker %s is away or slow: dropping the oldest",
                self.settings.outbox_size,
                self.where,
            )

    def close(self) -> None:
        client = self._client
        if client is None or self._stopping:
            return
        deadline = time.monotonic() + CLOSE_BUDGET_S
        with self._cond:  # let the publisher drain what is waiting while the broker is there
            while (self._outbox or self._handed) and self._connected and time.monotonic() < deadline - 0.7:
                self._cond.wait(0.05)
            self._stopping = True
            self._cond.notify_all()
        if self._publisher is not None:
            self._publisher.join(max(0.0, deadline - 0.6 - time.monotonic()))
        if self._connected:  # every camera offline, then the box
            for message in self.state.on_close():
                client.publish(message.topic, message.payload, qos=self.settings.qos, retain=True)
            info = client.publish(self.status_topic, OFFLINE, qos=self.settings.qos, retain=True)
            try:
                info.wait_for_publish(max(0.05, deadline - 0.3 - time.monotonic()))
            except (RuntimeError, ValueError):
                pass  # the connection went meanwhile: the broker publishes our will instead
        with self._cond:
            left = len(self._outbox) + len(self._handed)
            self._outbox.clear()
            self._handed.clear()
            self._client = None
        if left:
            self.lose(left, "shutdown")
            logger.warning("mqtt: stopping with %d message(s) not delivered to %s", left, self.where)
        if self._connected:
            client.disconnect()  # a clean DISCONNECT: the broker discards our will (offline is sent)
        stopper = threading.Thread(target=client.loop_stop, name="mqtt-stop", daemon=True)
        stopper.start()  # loop_stop joins paho's thread, which may sit in a connect attempt
        stopper.join(max(0.1, deadline - time.monotonic()))
        self._connected = False
        self.events.mqtt_connected(False)

    # -- state, for telemetry and tests -----------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    def outbox_length(self) -> int:
        """Messages waiting: in the outbox, and handed to paho but not yet sent or acknowledged."""
        return len(self._outbox) + len(self._handed)

    # -- the publisher thread ---------------------------------------------------------------------
    def _publish_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not (
                    self._outbox and self._connected and len(self._handed) < MAX_HANDED
                ):
                    self._cond.wait(0.5)
                if self._stopping:
                    return
                message = self._outbox.popleft()
                client = self._client
            if client is None:
                return
            info = client.publish(
                message.topic, message.payload, qos=self.settings.qos, retain=message.retain
            )
            qos = self.settings.qos
            with self._cond:
                # Not connected after all (the connection dropped a moment ago): paho keeps a QoS 1/2
                # message and sends it after the reconnect, a QoS 0 one comes back to the front here.
                kept = info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
                    info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0
                )
                if kept:
                    if info.mid in self._early:
                        self._early.discard(info.mid)
                    else:
                        self._handed[info.mid] = qos
                    if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                        continue
                elif len(self._outbox) < self.settings.outbox_size:
                    self._outbox.appendleft(message)
                else:
                    self.lose(1, "outbox_full")
                self._cond.wait(0.1)  # for paho to report the disconnection, rather than spin

    # -- paho callbacks (paho's network thread) ---------------------------------------------------
    def _on_connect(
        self, client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _properties: Any
    ) -> None:
        if self._stopping:  # a reconnect that raced close(): we are going, say nothing more
            client.disconnect()
            return
        if reason.is_failure:
            self._refused(reason)
            return
        if self._sweep is not None:  # read what the broker retains for us, up to our `online` below
            self._sweep.start()
            client.subscribe([(topic_filter, 0) for topic_filter in self._sweep.filters])
        with self._cond:
            # QoS 0 messages paho had not sent when the connection went were dropped by paho on reconnect.
            lost = [mid for mid, qos in self._handed.items() if qos == 0]
            for mid in lost:
                del self._handed[mid]
            self._early.clear()
        now = [
            Message(self.status_topic, ONLINE, True),
            *self.state.on_connect(time.time()),
            *self._discovery,
        ]
        self._publish_now(client, now)
        with self._cond:
            self._connected = True
            away = self._away_since
            self._away_since = None
            self._cond.notify_all()
        if lost:
            self.lose(len(lost), "connection_lost")
        self.events.mqtt_connected(True)
        for key in ("refused", "unreachable"):  # a new outage is reported at once
            self._log.reset(key)
        if away is None:
            logger.info("mqtt: connected to %s as %s", self.where, self.client_id)
        else:  # once a minute at most for a flapping link (crowdwatch_mqtt_connections_total counts all)
            away_s = time.monotonic() - away
            self._log_every(
                "reconnected",
                logging.INFO,
                "mqtt: connected to %s again after %.1f s away",
                self.where,
                away_s,
            )

    def _on_message(self, client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        if self._sweep is None:
            return
        stale = self._sweep.received(message.topic, bytes(message.payload), bool(message.retain))
        if stale is None:
            return
        client.unsubscribe(list(self._sweep.filters))
        self._publish_now(client, [Message(topic, b"", True) for topic in stale])
        if stale:
            shown = ", ".join(stale[:10]) + (f" and {len(stale) - 10} more" if len(stale) > 10 else "")
            logger.info("mqtt: cleared %d retained topic(s) the config no longer has: %s", len(stale), shown)

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _properties: Any
    ) -> None:
        if self._sweep is not None:
            self._sweep.stop()
        with self._cond:
            was_connected = self._connected
            self._connected = False
            if self._away_since is None:
                self._away_since = time.monotonic()
            waiting = len(self._outbox)
            self._cond.notify_all()
        if was_connected:
            self.events.mqtt_connected(False)
            if not self._stopping:
                self._log_every(
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
        if self._stopping:
            return
        error = getattr(client, "last_error", None)
        hint = ""
        if isinstance(error, ssl.SSLCertVerificationError):
            hint = " (check mqtt.tls.ca_file, and that mqtt.host matches the broker's certificate)"
        elif isinstance(error, ssl.SSLError):
            hint = " (check mqtt.tls and the broker's TLS listener)"
        self._log_every(
            "unreachable",
            logging.WARNING,
            "mqtt: cannot reach broker %s: %s%s; retrying with backoff up to %g s (results keep flowing "
            "to the other sinks; up to %d MQTT messages are kept)",
            self.where,
            _describe(error),
            hint,
            self.settings.reconnect.max_s,
            self.settings.outbox_size,
        )

    def _on_publish(
        self, _client: paho.Client, _userdata: Any, mid: int, _reason: ReasonCode, _properties: Any
    ) -> None:
        with self._cond:
            if self._handed.pop(mid, None) is None:
                self._early.add(mid)
            self._cond.notify_all()
        self.events.mqtt_published()

    # -- helpers ----------------------------------------------------------------------------------
    def _publish_now(self, client: paho.Client, messages: list[Message]) -> None:
        """Hand ``messages`` to paho ahead of the outbox (paho's thread: on connect, at the sweep's end)."""
        qos = self.settings.qos
        infos = [client.publish(m.topic, m.payload, qos=qos, retain=m.retain) for m in messages]
        with self._cond:
            for info in infos:
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    continue
                if info.mid in self._early:
                    self._early.discard(info.mid)
                else:
                    self._handed[info.mid] = qos

    def _refused(self, reason: ReasonCode) -> None:
        user = self.settings.username
        if str(reason) in _AUTH_FAILURES:
            hint = (
                f"for user {user!r} (check mqtt.username and the password credential)"
                if user is not None
                else "without a login (set mqtt.username and mqtt.password)"
            )
        else:
            hint = f"(client id {self.client_id!r}, user {user!r})"
        self._log_every(
            "refused",
            logging.ERROR,
            "mqtt: broker %s refused the connection: %s %s; retrying with backoff up to %g s",
            self.where,
            reason,
            hint,
            self.settings.reconnect.max_s,
        )

    def _tls_context(self) -> ssl.SSLContext:
        tls = self.settings.tls
        try:
            context = tls_context(tls)
        except TlsFileError as exc:
            raise UsageError(f"{exc.key}: {exc}") from None
        if tls.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            logger.warning("mqtt: tls.insecure is on: the broker's certificate is not checked")
        return context

    def _log_every(self, key: str, level: int, message: str, *args: object) -> None:
        """Log ``message`` now unless the same ``key`` was logged within the last minute."""
        self._log.log(key, level, message, *args)


def _drop_idle_loop_noise(record: logging.LogRecord) -> bool:
    """paho logs an error when its loop turns once more after a clean disconnect: not an error."""
    return not str(record.msg).startswith("Client is not connected")


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "connection failed"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
