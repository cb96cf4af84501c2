"""The ``mqtt:`` section of the site config, and the ``site`` id that names this box on the bus.

MQTT is off by default. When on, the sink (:mod:`crowdwatch.sinks.mqtt`) publishes under
``<topic_prefix>/<site>/...``; ``site`` is a top-level key of the config (a slug; by default this machine's
host name made into one) so that many boxes can share one broker, and the same name goes on the box's
Prometheus target as the ``site`` label. Kept apart from :mod:`crowdwatch.config.schema` (which imports
it) because the section is cohesive and the schema module has a size limit.

The password is a secret: it must come from ``${credential:NAME}`` or ``${env:NAME}`` (checked against
the values the loader substituted), is held as a :class:`~pydantic.SecretStr` (``***`` in every dump and
repr) and is registered with the config's secrets, so log lines are scrubbed of it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crowdwatch.config.base import Section, resolve_path

__all__ = [
    "MqttHomeAssistant",
    "MqttReconnect",
    "MqttSettings",
    "MqttTls",
    "TlsFileError",
    "default_site",
    "tls_context",
]

_SLUG_CHARS = re.compile(r"[^a-z0-9_-]+")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
#: A DNS label (RFC 1123; '_' too, as in Docker service names): 1-63 characters, no '-' at either end.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_HOST_HELP = (
    "expected a host name (labels of letters, digits, '-' and '_' separated by '.') or an IP address, "
    "with no scheme, port or path, e.g. broker.example.org or 192.0.2.5"
)


def default_site() -> str:
    """This machine's host name as a slug (``Box-07.example.org`` -> ``box-07``), or ``default``."""
    name = socket.gethostname().split(".", 1)[0].lower()
    slug = _SLUG_CHARS.sub("-", name).strip("-_")[:63]
    return slug or "default"


class MqttTls(Section):
    enabled: bool = Field(False, description="connect with TLS (port 8883 unless `port` is set)")
    ca_file: Path | None = Field(
        None,
        strict=False,
        description="CA certificates (PEM) that sign the broker's certificate; null = system CAs",
    )
    cert_file: Path | None = Field(
        None, strict=False, description="client certificate (PEM), for brokers that ask for one"
    )
    key_file: Path | None = Field(
        None, strict=False, description="the client certificate's private key (PEM)"
    )
    insecure: bool = Field(
        False, description="skip checking the broker's certificate and host name (tests only: no security)"
    )

    _resolve = field_validator("ca_file", "cert_file", "key_file")(resolve_path)

    @model_validator(mode="after")
    def _key_needs_cert(self) -> MqttTls:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file is set but cert_file is not (the key belongs to a certificate)")
        return self


class MqttReconnect(Section):
    initial_s: int = Field(1, ge=1, le=3600, description="first wait before reconnecting, whole seconds")
    max_s: int = Field(60, ge=1, le=3600, description="cap of the doubling backoff, whole seconds")

    @model_validator(mode="after")
    def _cap_above_initial(self) -> MqttReconnect:
        if self.max_s < self.initial_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= initial_s ({self.initial_s})")
        return self


def _check_topic_prefix(prefix: str) -> str:
    if any(c in prefix for c in "+#\0") or prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        raise ValueError(
            "expected topic levels separated by '/', without wildcards (+ #), empty levels or "
            "a leading or trailing '/', e.g. crowdwatch or acme/stations"
        )
    return prefix


class MqttHomeAssistant(Section):
    """Home Assistant MQTT discovery: entities that appear in Home Assistant without YAML."""

    enabled: bool = Field(False, description="publish Home Assistant discovery messages (retained)")
    discovery_prefix: str = Field(
        "homeassistant", min_length=1, max_length=200, description="Home Assistant's discovery prefix"
    )

    _prefix = field_validator("discovery_prefix")(_check_topic_prefix)


class MqttSettings(Section):
    """Where and how the MQTT sink publishes (see docs/mqtt.md for topics and payloads)."""

    enabled: bool = Field(False, description="publish counts, alert events and availability over MQTT")
    host: str = Field("127.0.0.1", min_length=1, max_length=253, description="broker host name or address")
    port: int | None = Field(None, ge=1, le=65535, description="broker port; null = 1883, or 8883 with TLS")
    tls: MqttTls = Field(default_factory=MqttTls)
    username: str | None = Field(None, min_length=1, max_length=256, description="login user name")
    password: SecretStr | None = Field(
        None, description="login password: ${credential:NAME} or ${env:NAME}, never written in the file"
    )
    qos: Literal[0, 1, 2] = Field(1, description="MQTT quality of service of every message")
    retain: bool = Field(
        True, description="retain counts and each zone's last alert event (late subscribers see them)"
    )
    topic_prefix: str = Field(
        "crowdwatch", min_length=1, max_length=200, description="topics are <topic_prefix>/<site>/..."
    )
    client_id: str | None = Field(
        None, description="MQTT client id; null = crowdwatch-<site>-<process id> (unique per process)"
    )
    keepalive_s: int = Field(
        30, ge=5, le=3600, description="ping interval; the broker declares us dead at 1.5x"
    )
    connect_timeout_s: float = Field(5.0, gt=0, le=120, description="longest one connection attempt may take")
    outbox_size: int = Field(
        10_000, ge=10, le=1_000_000, description="messages kept while the broker is away; the oldest go first"
    )
    reconnect: MqttReconnect = Field(default_factory=MqttReconnect)
    homeassistant: MqttHomeAssistant = Field(default_factory=MqttHomeAssistant)

    @field_validator("host")
    @classmethod
    def _plain_host(cls, host: str) -> str:
        try:
            ipaddress.ip_address(host)
            return host
        except ValueError:
            pass
        bad = sorted({c for c in host if not (c.isascii() and (c.isalnum() or c in "-_."))})
        if bad:
            shown = ", ".join("a space" if c == " " else repr(c) for c in bad)
            raise ValueError(f"{_HOST_HELP}; but it contains {shown}")
        if not all(_LABEL.match(label) for label in host.removesuffix(".").split(".")):
            raise ValueError(f"{_HOST_HELP}; but it has an empty label or one that starts or ends with '-'")
        return host

    _prefix = field_validator("topic_prefix")(_check_topic_prefix)

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, client_id: str | None) -> str | None:
        if client_id is not None and not _CLIENT_ID.match(client_id):
            raise ValueError("expected 1-128 letters, digits, '_', '.', ':' or '-'")
        return client_id

    @field_validator("password", mode="before")
    @classmethod
    def _password_is_a_reference(cls, value: object, info: ValidationInfo) -> object:
        secrets = (info.context or {}).get("secrets")
        if isinstance(value, str) and secrets is not None and value not in secrets:
            raise ValueError(
                "write the password as ${credential:NAME} or ${env:NAME}; it must not be stored in the file"
            )
        return value

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttSettings:
        if self.password is not None and self.username is None:
            raise ValueError("password is set but username is not")
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 8883 if self.tls.enabled else 1883


class TlsFileError(ValueError):
    """A TLS file of the ``mqtt.tls`` section that cannot be loaded; ``key`` is its key path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def tls_context(tls: MqttTls) -> ssl.SSLContext:
    """The client's TLS context: the CA file (or the system CAs), the client certificate and key.

    Raises :class:`TlsFileError` naming the key of a file that is missing, unreadable or not PEM.
    Used when the config is loaded (so ``check-config`` catches these before ``run`` loads a model)
    and again by the MQTT sink when it connects. ``insecure`` is applied by the caller.
    """
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsFileError(
            "mqtt.tls.ca_file", f"cannot load {tls.ca_file}: {_describe(exc)} (expected PEM CA certificates)"
        ) from None
    if tls.cert_file is not None:
        try:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise TlsFileError(
                "mqtt.tls.cert_file/key_file",
                f"cannot load {tls.cert_file}: {_describe(exc)} (expected a PEM certificate and its key)",
            ) from None
    return context


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
