"""A plain-socket RTSP probe: fail fast, outside OpenCV's process-wide open lock, on a dead camera.

A host that never answers would otherwise hold OpenCV's open lock (and with it every other camera's
open) for its whole open timeout. The probe connects with a non-blocking socket that checks the stop
event every :data:`~crowdwatch.capture.base.STOP_CHECK_S`, sends ``OPTIONS`` and wants an ``RTSP/``
reply before the camera's ``open_timeout_s``.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time

from crowdwatch.capture.base import STOP_CHECK_S, SourceConnectionError, Stopped
from crowdwatch.config import CameraConfig

__all__ = ["DEFAULT_PORTS", "probe"]

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}


def _host_port(url: str, scheme: str) -> tuple[str, int, str]:
    """(host, port, path) of a stream URL, ignoring any userinfo (a password may contain '/' or '@')."""
    rest = url.split("://", 1)[1]
    rest = rest.rsplit("@", 1)[-1]
    hostport, _, path = rest.partition("/")
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = hostport.partition(":")
    port = int(port_text) if port_text.isdigit() else DEFAULT_PORTS.get(scheme, 554)
    return host, port, path


def _connect(host: str, port: int, deadline: float, stop: threading.Event) -> socket.socket:
    """TCP connect that gives up at ``deadline`` and checks ``stop`` every slice (a blocking connect to
    a host that drops SYNs could not be interrupted). Name resolution itself may still block."""
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(address)
            while code == errno.EINPROGRESS:
                if stop.is_set():
                    raise Stopped
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(errno.ETIMEDOUT, "timed out")
                if select.select([], [sock], [], min(remaining, STOP_CHECK_S))[1]:
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error


def probe(camera: CameraConfig, stop: threading.Event) -> None:
    """Fail fast, outside OpenCV's open lock, when the server does not answer RTSP (or TCP).

    Raises :class:`SourceConnectionError` (no password in it) or :class:`Stopped`.
    """
    assert not isinstance(camera.url, int), "only stream URLs are probed, not device indexes"
    scheme = camera.url.scheme
    host, port, path = _host_port(camera.url.reveal(), scheme)
    deadline = time.monotonic() + camera.open_timeout_s
    try:
        with _connect(host, port, deadline, stop) as sock:
            if scheme != "rtsp":
                return
            target = f"rtsp://{host if ':' not in host else f'[{host}]'}:{port}/{path}"
            sock.settimeout(STOP_CHECK_S)
            sock.sendall(f"OPTIONS {target} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: crowdwatch\r\n\r\n".encode())
            reply = b""
            while len(reply) < 5:
                if stop.is_set():
                    raise Stopped
                if time.monotonic() > deadline:
                    raise SourceConnectionError(
                        camera.id, f"{host}:{port} accepted TCP but did not answer RTSP"
                    )
                try:
                    chunk = sock.recv(64)
                except TimeoutError:
                    continue
                if not chunk:
                    raise SourceConnectionError(camera.id, f"{host}:{port} closed the connection")
                reply += chunk
            if not reply.startswith(b"RTSP/"):
                raise SourceConnectionError(camera.id, f"{host}:{port} is not an RTSP server")
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise SourceConnectionError(camera.id, f"cannot connect to {host}:{port}: {reason}") from None
