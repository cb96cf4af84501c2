"""The HTTP server for ``/metrics`` and ``/healthz``, on a daemon thread.

``/metrics`` is client_python's own :class:`~prometheus_client.exposition.MetricsHandler` (content
negotiation, OpenMetrics, gzip, ``name[]`` filters) tied to our registry; ``/healthz`` is added beside
it and answers 200 or 503 with the JSON body of a health callable
(:func:`crowdwatch.telemetry.health.camera_health` over the readers). The socket's address family
follows the bind address, as client_python's ``start_wsgi_server`` chooses it, so ``::1`` or ``::``
work as well as ``127.0.0.1``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler

from crowdwatch.httpbind import best_family, bind_http, url_of

__all__ = ["HealthCheck", "MetricsServer", "best_family"]

logger = logging.getLogger(__name__)

#: Returns (healthy, JSON-able body) for /healthz.
HealthCheck = Callable[[], tuple[bool, dict[str, object]]]


class _Handler(MetricsHandler):
    """client_python's handler on ``/metrics``, plus ``/healthz``; anything else is 404."""

    health: HealthCheck  # set on the subclass :meth:`MetricsServer` makes

    def do_GET(self) -> None:  # http.server's name
        path = urlsplit(self.path).path
        if path == "/metrics":
            super().do_GET()
        elif path == "/healthz":
            ok, body = self.health()
            self._send(200 if ok else 503, "application/json", json.dumps(body).encode())
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # http.server's names
        logger.debug("metrics http: " + format, *args)


class MetricsServer:
    """Serves ``registry`` on ``/metrics`` and ``health()`` on ``/healthz``; ``stop()`` shuts it down.

    Binding happens in the constructor (an ``OSError`` for a busy port or an unusable address).
    """

    def __init__(
        self, registry: CollectorRegistry, health: HealthCheck, address: str = "127.0.0.1", port: int = 9108
    ) -> None:
        self.registry = registry
        handler = cast(type[_Handler], _Handler.factory(registry))  # MetricsHandler's own, tied to registry
        handler.health = staticmethod(health)  # a plain callable, not a method

        self._server = bind_http(address, port, handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """``http://host:port`` (an IPv6 host in brackets)."""
        return url_of(self._server)

    def start(self) -> MetricsServer:
        if self._thread.is_alive():
            return self
        self._thread.start()
        logger.info("metrics: serving /metrics and /healthz on %s", self.url)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
