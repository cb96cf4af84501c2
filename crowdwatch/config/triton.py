"""The ``model`` keys of ``backend: triton``: where the shared inference pool is and how long to wait for it.

A box with ``backend: triton`` sends its preprocessed batches to an NVIDIA Triton server over gRPC
(``url``, model ``name``) and decodes the points itself; it needs no weights file and no torch. A
request that takes longer than ``timeout_s`` is abandoned and its frames are dropped
(``frames_dropped_total{reason="inference_unavailable"}``); after a failure the box tries again after
``retry_initial_s``, doubling up to ``retry_max_s``.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from crowdwatch.config.base import Section, resolve_path

__all__ = ["DEFAULT_TRITON_MODEL", "TritonTls", "parse_grpc_url"]

#: The model name ``crowdwatch serve`` and ``crowdwatch export --format triton`` use.
DEFAULT_TRITON_MODEL = "p2pnet"
_URL = re.compile(r"^(grpc|grpcs)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})/?$")


def parse_grpc_url(url: str) -> tuple[str, bool]:
    """``grpc://host:port`` -> (``host:port``, False); ``grpcs://`` -> (…, True: TLS). ValueError else."""
    match = _URL.match(url)
    if match is None or not 0 < int(match.group(3)) < 65536:
        raise ValueError(
            f"expected grpc://HOST:PORT (or grpcs:// for TLS), e.g. grpc://pool.example:8001, but got {url!r}"
        )
    return f"{match.group(2)}:{match.group(3)}", match.group(1) == "grpcs"


class TritonTls(Section):
    """TLS towards the pool (``grpcs://`` URLs): the CA that signed the server's certificate and, for
    mutual TLS, this box's certificate and key (files, e.g. from systemd ``LoadCredential=``)."""

    ca: Path | None = Field(None, strict=False, description="PEM CA bundle; null = the system's roots")
    cert: Path | None = Field(None, strict=False, description="client certificate (PEM) for mutual TLS")
    key: Path | None = Field(None, strict=False, description="client key (PEM) for mutual TLS")

    _abs = field_validator("ca", "cert", "key")(resolve_path)

    @model_validator(mode="after")
    def _pair(self) -> TritonTls:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together (mutual TLS): give both or neither")
        return self
