"""Secrets referenced from the config, and keeping them out of everything a person can read.

A config string may contain ``${env:NAME}`` (an environment variable) or ``${credential:NAME}`` (the
file ``$CREDENTIALS_DIRECTORY/NAME``, which systemd's ``LoadCredential=`` provides). They are
substituted when the config is loaded, so a missing secret fails at start-up, not at the first
reconnect. ``$${`` writes a literal ``${``.

Every substituted value is remembered in a :class:`SecretValues` set so that error messages and log
lines can be scrubbed of it, and :func:`mask_url` hides the ``user:password@`` part of a URL.
:class:`SecretUrl` holds a camera URL whose ``str()``/``repr()`` are masked; only
:meth:`SecretUrl.reveal` gives the real one (to hand to the capture library).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

__all__ = [
    "MASK",
    "RedactingFilter",
    "SecretReferenceError",
    "SecretUrl",
    "SecretValues",
    "mask_url",
    "substitute",
]

MASK = "***"
# A value shorter than this is not scrubbed from free text: "1" or "on" would mangle every message.
MIN_SCRUB_LENGTH = 4

_REFERENCE = re.compile(r"\$\$\{|\$\{([a-z]+):([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CREDENTIAL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")
# scheme://userinfo@rest ; userinfo runs to the LAST "@" so that a password containing "@" or "/"
# (common in hand-written camera URLs) is hidden entirely rather than half-shown.
_URL_WITH_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s'\"]*)@")
# Some cameras take credentials in the query string (?user=admin&password=...).
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pass|pwd|token|auth|key|secret|signature)=)[^&#;\s'\"]*", re.IGNORECASE
)


class SecretReferenceError(ValueError):
    """A ``${...}`` reference that cannot be resolved. The message names the variable, never a value."""


def mask_url(url: object) -> str:
    """Return ``url`` as text with any ``user:password@`` replaced by ``***@``, and the values of
    query parameters such as ``password=`` or ``token=`` replaced by ``***``.

    Works on any text: every ``scheme://...@`` occurrence is masked, so it is also safe on a log
    message or an exception text that embeds a URL. Non-URL text is returned unchanged.
    """
    text = _URL_WITH_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", str(url))
    return _SECRET_QUERY.sub(lambda m: f"{m.group('key')}{MASK}", text)


class SecretValues:
    """The set of secret strings substituted into one config; scrubs them from free text."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = {v for v in values if v}

    def add(self, value: str) -> None:
        if value:
            self._values.add(value)

    def merge(self, other: SecretValues) -> None:
        """Add ``other``'s values (a reloaded config's secrets join those already masked; none leave)."""
        self._values |= other._values

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value: object) -> bool:
        """Whether ``value`` is one of the substituted secrets (a config key can insist on a reference)."""
        return value in self._values

    def __repr__(self) -> str:  # never show the values themselves
        return f"SecretValues(<{len(self._values)} hidden>)"

    def scrub(self, text: str) -> str:
        """``text`` with every URL userinfo masked and every known secret replaced by ``***``."""
        text = mask_url(text)
        for value in sorted(self._values, key=len, reverse=True):
            if len(value) >= MIN_SCRUB_LENGTH:
                text = text.replace(value, MASK)
        return text


def _resolve_reference(kind: str, name: str, environ: dict[str, str] | os._Environ[str]) -> str:
    if kind == "env":
        if not _ENV_NAME.match(name):
            raise SecretReferenceError(f"${{env:{name}}}: not a valid environment variable name")
        if name not in environ:
            raise SecretReferenceError(
                f"environment variable {name} is not set (referenced as ${{env:{name}}})"
            )
        return environ[name]
    if kind == "credential":
        if not _CREDENTIAL_NAME.match(name) or ".." in name:
            raise SecretReferenceError(f"${{credential:{name}}}: not a valid credential name")
        directory = environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise SecretReferenceError(
                f"credential {name} is referenced but $CREDENTIALS_DIRECTORY is not set "
                f"(systemd sets it for LoadCredential=)"
            )
        try:
            text = (Path(directory) / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SecretReferenceError(f"credential {name} not found in $CREDENTIALS_DIRECTORY") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretReferenceError(f"credential {name} cannot be read ({type(exc).__name__})") from None
        return text.rstrip("\r\n")
    raise SecretReferenceError(
        f"unknown reference kind {kind!r}: expected ${{env:NAME}} or ${{credential:NAME}}"
    )


def substitute(
    text: str, secrets: SecretValues, environ: dict[str, str] | os._Environ[str] | None = None
) -> str:
    """Replace every ``${env:NAME}``/``${credential:NAME}`` in ``text``; record the values in ``secrets``.

    Raises :class:`SecretReferenceError` for the first reference that cannot be resolved.
    """
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        value = _resolve_reference(match.group(1), match.group(2), env)
        secrets.add(value)
        return value

    return _REFERENCE.sub(replace, text)


class SecretUrl:
    """A camera URL that prints masked. ``reveal()`` returns the real URL for the capture library.

    Equality and hashing use the real URL; ``str``, ``repr``, f-strings, pydantic dumps and logging
    all see the masked form: :func:`mask_url`, and with ``secrets`` also every substituted secret
    value wherever it sits in the URL (a host, a path, a query parameter).
    """

    __slots__ = ("_masked", "_value")

    def __init__(self, value: str, secrets: SecretValues | None = None) -> None:
        if not isinstance(value, str):
            raise TypeError(f"SecretUrl needs a str, got {type(value).__name__}")
        self._value = value
        self._masked = secrets.scrub(value) if secrets is not None else mask_url(value)

    def reveal(self) -> str:
        return self._value

    @property
    def masked(self) -> str:
        return self._masked

    @property
    def scheme(self) -> str:
        """Lower-case scheme (``rtsp``), or ``""`` for a plain file path."""
        head, sep, _ = self._value.partition("://")
        return head.lower() if sep else ""

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"SecretUrl({self.masked!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretUrl) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("SecretUrl", self._value))

    def __reduce__(self) -> tuple[Any, ...]:  # pickling keeps the masked form as it was built
        return (_restore_secret_url, (self._value, self._masked))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        from_str = core_schema.no_info_after_validator_function(cls, core_schema.str_schema(min_length=1))
        return core_schema.json_or_python_schema(
            json_schema=from_str,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_str]),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda v: v.masked),
        )


def _restore_secret_url(value: str, masked: str) -> SecretUrl:
    url = SecretUrl.__new__(SecretUrl)
    url._value, url._masked = value, masked
    return url


class RedactingFilter(logging.Filter):
    """A logging filter that masks URL credentials and known secret values in every record.

    Attach it to the handlers at the CLI edge: ``handler.addFilter(RedactingFilter(config.secrets))``.
    The record's message is formatted once (with its args) and replaced by the scrubbed text.
    """

    def __init__(self, secrets: SecretValues | None = None) -> None:
        super().__init__()
        self.secrets = secrets if secrets is not None else SecretValues()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it as usual
            return True
        record.msg = self.secrets.scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.secrets.scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.secrets.scrub(record.exc_text)
        return True
