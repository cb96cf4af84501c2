"""Binding crowdwatch's HTTP servers (metrics and health, the live view) the same way: one address family
rule and one threaded server, bound at construction so that a port in use is found before any work."""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["best_family", "bind_http", "url_of"]


def best_family(address: str, port: int) -> tuple[socket.AddressFamily, str]:
    """(address family, address to bind) for ``address``: AF_INET6 for ``::1``, AF_INET for ``0.0.0.0``
    (client_python's ``_get_best_family``: the first answer of a passive ``getaddrinfo``)."""
    infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, sockaddr = infos[0]
    return family, str(sockaddr[0])


def bind_http(address: str, port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A threaded HTTP server for ``handler``, bound to ``address``:``port`` now (OSError when it cannot
    be); its request threads are daemons, so a hung client never holds up a stop."""
    family, host = best_family(address, port)

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True

    return Server((host, port), handler)


def url_of(server: ThreadingHTTPServer) -> str:
    """``http://host:port`` of a bound server (an IPv6 host in brackets)."""
    host, port = str(server.server_address[0]), int(server.server_address[1])
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"
