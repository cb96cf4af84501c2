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


def serve_options_only() -> tuple[socket.socket, threading.Event]:
    """A TCP server on 127.0.0.1 that answers every RTSP OPTIONS with 200 OK and never answers DESCRIBE
    (a camera whose stream on that path never starts); set the event to let it go."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    done = threading.Event()

    def session(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.1)
            buffer = b""
            while not done.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    request, buffer = buffer.split(b"\r\n\r\n", 1)
                    if request.startswith(b"OPTIONS "):
                        lines = request.split(b"\r\n")
                        cseq = next((line for line in lines if line.startswith(b"CSeq")), b"")
                        conn.sendall(b"RTSP/1.0 200 OK\r\n" + cseq + b"\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n")

    def accept() -> None:
        server.settimeout(0.1)
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=session, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server, done


def test_a_server_answering_options_but_not_describe_is_reported_as_such() -> None:
    server, done = serve_options_only()
    try:
        cam = camera(f"rtsp://admin:{PASSWORD}@127.0.0.1:{server.getsockname()[1]}/x", open_timeout_s=1.0)
        with pytest.raises(SourceConnectionError) as info:
            open_capture(cam, threading.Event())
    finally:
        done.set()
        server.close()
    message = str(info.value)
    # it said "accepted TCP but did not answer RTSP", though the server had answered the probe's OPTIONS
    assert "answers OPTIONS but not DESCRIBE" in message and "did not answer RTSP" not in message, message
    assert PASSWORD not in message
