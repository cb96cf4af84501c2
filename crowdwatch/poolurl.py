"""The inference pool's address (``backend: triton``), parsed once for the config and the client: a
``grpc://HOST:PORT`` URL (``grpcs://`` for TLS), and the model name a pool serves by default."""

from __future__ import annotations

import re

__all__ = ["DEFAULT_TRITON_MODEL", "parse_grpc_url"]

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
