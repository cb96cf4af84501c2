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

__all__ = ["DEFAULT_PORTS", "describe_status", "probe"]

_STATUS_LINE_MAX = 512


class _NoAnswer(SourceConnectionError):
    """The server took the TCP connection and the request but sent no reply before the deadline."""


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
    """Fail fast, outside OpenCV's open lock, when the server does not answer RTSP (or TCP), or answers
    ``OPTIONS`` with an error status.

    Raises :class:`SourceConnectionError` (no password in it) or :class:`Stopped`.
    """
    status = _request(camera, stop, "OPTIONS")
    if status is not None and not status.startswith(("1", "2", "3")):
        assert not isinstance(camera.url, int)
        host, port, _ = _host_port(camera.url.reveal(), camera.url.scheme)
        raise SourceConnectionError(camera.id, f"{host}:{port} answered OPTIONS with {status}")


def describe_status(camera: CameraConfig, stop: threading.Event) -> str:
    """Why an RTSP open failed, as far as a plain ``DESCRIBE`` (without credentials) tells: e.g.
    ``RTSP 404 Not Found`` for a wrong path, or the probe's reason when the server no longer answers.
    Called after OpenCV failed to open, so that the log says why (FFmpeg's own messages are quieted)."""
    try:
        status = _request(camera, stop, "DESCRIBE")
    except _NoAnswer:  # the probe's OPTIONS was answered just before OpenCV's open
        return (
            f"the server answers OPTIONS but not DESCRIBE (no reply within {camera.open_timeout_s:g} s): "
            "the stream on this path does not start"
        )
    except SourceConnectionError as exc:
        return str(exc).split(": ", 1)[-1]
    if status is None:
        return "not an RTSP stream"
    if status.startswith("401") and "@" in str(camera.url):  # the masked URL keeps the '@'
        return "RTSP 401 Unauthorized (wrong user or password?)"
    if status.startswith("2"):
        return "the server describes the stream (RTSP 200) but it could not be played (codec, transport?)"
    return f"RTSP {status}"


def _request(camera: CameraConfig, stop: threading.Event, method: str) -> str | None:
    """Connect and send ``method`` for the camera's path; the reply's status (``"404 Not Found"``), or
    None for a non-RTSP scheme (only TCP is checked). Raises SourceConnectionError or Stopped."""
    assert not isinstance(camera.url, int), "only stream URLs are probed, not device indexes"
    scheme = camera.url.scheme
    host, port, path = _host_port(camera.url.reveal(), scheme)
    deadline = time.monotonic() + camera.open_timeout_s
    try:
        with _connect(host, port, deadline, stop) as sock:
            if scheme != "rtsp":
                return None
            target = f"rtsp://{host if ':' not in host else f'[{host}]'}:{port}/{path}"
            sock.settimeout(STOP_CHECK_S)
            sock.sendall(
                f"{method} {target} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: crowdwatch\r\n"
                f"Accept: application/sdp\r\n\r\n".encode()
            )
            reply = b""
            while b"\r\n" not in reply and len(reply) < _STATUS_LINE_MAX:
                if stop.is_set():
                    raise Stopped
                if time.monotonic() > deadline:
                    raise _NoAnswer(camera.id, f"{host}:{port} accepted TCP but did not answer RTSP")
                try:
                    chunk = sock.recv(256)
                except TimeoutError:
                    continue
                if not chunk:
                    if reply.startswith(b"RTSP/"):
                        break
                    raise SourceConnectionError(camera.id, f"{host}:{port} closed the connection")
                reply += chunk
            if not reply.startswith(b"RTSP/"):
                raise SourceConnectionError(camera.id, f"{host}:{port} is not an RTSP server")
            # "RTSP/1.0 404 Not Found" -> "404 Not Found"
            line = reply.split(b"\r\n", 1)[0].decode("latin-1")
            return line.split(" ", 1)[1].strip() if " " in line else line
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise SourceConnectionError(camera.id, f"cannot connect to {host}:{port}: {reason}") from None
