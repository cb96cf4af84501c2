"""The ``web`` section: the live view and shape editor served by ``crowdwatch run``.

Off by default. On a loopback address (``127.0.0.1``, ``::1``) it needs no token; bound anywhere else
every page and API call needs ``token``, which must come from ``${credential:NAME}`` or
``${env:NAME}`` (never written in the file), the way ``mqtt.password`` does.
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from crowdwatch.config.base import Section

__all__ = ["WebSettings", "is_loopback"]

#: Shortest token accepted: a guessable token on a reachable port is no protection.
MIN_TOKEN_LENGTH = 16
#: Characters that pass unchanged through a header, a cookie and a query string.
_TOKEN = re.compile(rf"^[A-Za-z0-9._~-]{{{MIN_TOKEN_LENGTH},1024}}$")


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP address or ``localhost``) is reachable only from this machine."""
    if address == "localhost":
        return True
    return ipaddress.ip_address(address).is_loopback


class WebSettings(Section):
    enabled: bool = Field(False, description="serve the live view, the JSON API and the shape editor")
    address: str = Field("127.0.0.1", description="IP address the page binds; not loopback = token needed")
    port: int = Field(9110, ge=0, le=65535, description="0 = any free port")
    token: SecretStr | None = Field(
        None, description="access token: ${credential:NAME} or ${env:NAME}; required off loopback"
    )
    max_viewers: int = Field(8, ge=1, le=1000, description="concurrent live streams; more are refused (503)")
    max_fps: float = Field(
        10.0, gt=0, le=60, description="most frames per second shown (and encoded) per camera"
    )

    @field_validator("address")
    @classmethod
    def _ip_address(cls, address: str) -> str:
        try:
            is_loopback(address)
        except ValueError:
            raise ValueError("expected an IP address such as 127.0.0.1, 0.0.0.0 or ::1") from None
        return address

    @field_validator("token", mode="before")
    @classmethod
    def _token_is_a_reference(cls, value: object, info: ValidationInfo) -> object:
        secrets = (info.context or {}).get("secrets")
        if isinstance(value, str) and secrets is not None and value not in secrets:
            raise ValueError(
                "write the token as ${credential:NAME} or ${env:NAME}; it must not be stored in the file"
            )
        if isinstance(value, str) and not _TOKEN.match(value):
            raise ValueError(
                f"the token must be at least {MIN_TOKEN_LENGTH} characters: "
                "letters, digits, '-', '_', '.' or '~'"
            )
        return value

    @model_validator(mode="after")
    def _token_off_loopback(self) -> WebSettings:
        if self.enabled and self.token is None and not is_loopback(self.address):
            raise ValueError(
                f"web.address {self.address} is reachable from other machines: set web.token "
                "(${credential:NAME}, e.g. camera_web_token under systemd) or bind 127.0.0.1"
            )
        return self
