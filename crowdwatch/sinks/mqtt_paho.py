"""paho's client as crowdwatch sets it up (login, TLS, last will, backoff, in-flight limit), and what its
failures mean to the person reading the log. The connection's life is :mod:`crowdwatch.sinks.mqtt_client`'s.

paho-mqtt is the Eclipse project's maintained Python client, with TLS, last will, QoS 0-2 and its own
network thread that reconnects with a doubling backoff.
"""

from __future__ import annotations

import logging
import ssl

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from crowdwatch.config.mqtt import MqttSettings, TlsFileError, tls_context
from crowdwatch.errors import UsageError
from crowdwatch.sinks.mqtt_messages import Message

__all__ = ["MAX_INFLIGHT", "PahoClient", "paho_client", "refused_hint", "unreachable_reason"]

logger = logging.getLogger(__name__)

#: Most QoS 1/2 messages on the wire unacknowledged at once. Brokers cap what they accept from one
#: client (mosquitto's max_inflight_messages, 20 by default, answers the 21st QoS 2 message with "quota
#: exceeded" and drops the connection), so stay at that common default.
MAX_INFLIGHT = 20

_AUTH_FAILURES = {"Bad user name or password", "Not authorized"}


class PahoClient(paho.Client):
    """paho's client, remembering why the last connection attempt failed (paho only says that it did)."""

    last_error: OSError | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as exc:
            self.last_error = exc
            raise


def paho_client(settings: MqttSettings, client_id: str, will: Message) -> PahoClient:
    """A client for ``settings``' broker with ``will`` as its last will, not connected yet (no callbacks
    set); a TLS file that cannot be loaded is a :class:`UsageError` naming its config key."""
    s = settings
    client = PahoClient(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True, protocol=paho.MQTTv311
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
        client.tls_set_context(_tls_context(s))
        if s.tls.insecure:
            client.tls_insecure_set(True)
    client.will_set(will.topic, will.payload, qos=s.qos, retain=will.retain)
    client.reconnect_delay_set(min_delay=s.reconnect.initial_s, max_delay=s.reconnect.max_s)
    client.max_inflight_messages_set(MAX_INFLIGHT)
    client.connect_timeout = s.connect_timeout_s
    return client


def unreachable_reason(error: BaseException | None) -> str:
    """Why a connection attempt failed, with what to check: ``Connection refused``,
    ``certificate verify failed (check mqtt.tls.ca_file, ...)``."""
    if error is None:
        text = "connection failed"
    elif isinstance(error, OSError) and error.strerror:
        text = error.strerror
    else:
        text = str(error) or type(error).__name__
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"{text} (check mqtt.tls.ca_file, and that mqtt.host matches the broker's certificate)"
    if isinstance(error, ssl.SSLError):
        return f"{text} (check mqtt.tls and the broker's TLS listener)"
    return text


def refused_hint(reason: ReasonCode, settings: MqttSettings, client_id: str) -> str:
    """What to check when the broker answered the login with ``reason`` (never the password)."""
    user = settings.username
    if str(reason) not in _AUTH_FAILURES:
        return f"(client id {client_id!r}, user {user!r})"
    if user is None:
        return "without a login (set mqtt.username and mqtt.password)"
    return f"for user {user!r} (check mqtt.username and the password credential)"


def _tls_context(settings: MqttSettings) -> ssl.SSLContext:
    tls = settings.tls
    try:
        context = tls_context(tls)
    except TlsFileError as exc:
        raise UsageError(f"{exc.key}: {exc}") from None
    if tls.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        logger.warning("mqtt: tls.insecure is on: the broker's certificate is not checked")
    return context


def _drop_idle_loop_noise(record: logging.LogRecord) -> bool:
    """paho logs an error when its loop turns once more after a clean disconnect: not an error."""
    return not str(record.msg).startswith("Client is not connected")
