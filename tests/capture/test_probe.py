"""Opening a camera: the RTSP probe tells a dead or wrong server apart, never showing the password."""

from __future__ import annotations

import socket
import threading

import pytest
from support.capture_fakes import camera

from crowdwatch.capture.base import SourceConnectionError
from crowdwatch.capture.opencv import open_capture
from crowdwatch.capture.probe import _host_port

PASSWORD = "hunter2-Secret"


def test_open_capture_reports_a_refused_connection_without_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cam = camera(f"rtsp://admin:{PASSWORD}@127.0.0.1:{port}/x")
    with pytest.raises(SourceConnectionError) as info:
        open_capture(cam, threading.Event())
    assert "cam" in str(info.value) and PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://h/x", ("h", 554, "x")),
        ("rtsp://u:p@h:8554/a/b", ("h", 8554, "a/b")),
        ("rtsp://u:p@ss/w@cam:10554/live", ("cam", 10554, "live")),  # '@' and '/' in the password
        ("rtsp://[::1]:8554/x", ("::1", 8554, "x")),
        ("rtsps://h/x", ("h", 322, "x")),
    ],
)
def test_host_port_ignores_userinfo(url: str, expected: tuple[str, int, str]) -> None:
    assert _host_port(url, url.split(":", 1)[0]) == expected


def serve_once(reply: bytes) -> tuple[socket.socket, threading.Thread]:
    """A TCP server on 127.0.0.1 that answers one connection with ``reply`` and closes it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize(
    ("reply", "message"),
    [(b"HTTP/1.0 400 Bad Request\r\n\r\n", "is not an RTSP server"), (b"", "closed the connection")],
)
def test_probe_tells_what_answered(reply: bytes, message: str) -> None:
    server, thread = serve_once(reply)
    with server:
        cam = camera(f"rtsp://admin:{PASSWORD}@127.0.0.1:{server.getsockname()[1]}/x")
        with pytest.raises(SourceConnectionError, match=message) as info:
            open_capture(cam, threading.Event())
        thread.join(2)
    assert PASSWORD not in str(info.value)
