"""The ``model`` keys of ``backend: triton``: where the shared inference pool is and how long to wait for it.

A box with ``backend: triton`` sends its preprocessed batches to an NVIDIA Triton server over gRPC
(``url``, model ``name``) and decodes the points itself; it needs no weights file and no torch. A
request that takes longer than ``timeout_s`` is abandoned and its frames are dropped
(``frames_dropped_total{reason="inference_unavailable"}``); after a failure the box tries again after
``retry_initial_s``, doubling up to ``retry_max_s``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from crowdwatch.config.base import Section, resolve_path

__all__ = ["TritonTls"]


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
