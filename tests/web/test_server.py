"""The live view's HTTP server in this process, over real sockets: a hub fed with real results (frames
drawn here), the real schema behind /api/v1/validate. What a browser needs is in test_live_page.py."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.config_files import write_config

from crowdwatch.capture.base import CameraState
from crowdwatch.config import load_config
from crowdwatch.frames import Result
from crowdwatch.web.hub import HISTORY_S, CameraView, LiveHub
from crowdwatch.web.live import LiveView
from crowdwatch.web.server import CSP

TOKEN = "tok-0123456789abcdef"
PASSWORD = "Cam-pa55word-9x"
CONFIG = """\
    cameras:
      - id: lobby
        url: rtsp://viewer:${env:CAM_PASSWORD}@192.0.2.10:554/stream1
        zones:
          - id: doors
            polygon: [[0, 0], [80, 0], [80, 120], [0, 120]]
            alert: {high: 2, low: 1}
    web:
      enabled: true
      address: %s
      port: 0
      token: %s
      max_viewers: 2
"""


def make_result(index: int, count: int = 3, captured_at: float | None = None) -> Result:
    image = np.full((120, 160, 3), (index * 40) % 255, dtype=np.uint8)
    points = np.array([[10.0 + i, 20.0] for i in range(count)], dtype=np.float32).reshape(-1, 2)
    return Result(
        camera="lobby",
        index=index,
        captured_at=time.time() if captured_at is None else captured_at,
        image=image,
        points=points,
        count=count,
        latency_s=0.01,
        zone_counts={"doors": count},
        zone_alerts={"doors": count >= 2},
        smoothed_count=count - 0.5,
        zone_smoothed={"doors": count - 0.5},
    )


def live_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, address: str, token: bool
) -> Iterator[LiveView]:
    monkeypatch.setenv("CAM_PASSWORD", PASSWORD)
    monkeypatch.setenv("WEB_TOKEN", TOKEN)
    config = load_config(write_config(tmp_path, CONFIG % (address, "${env:WEB_TOKEN}" if token else "null")))
    states = [CameraState("lobby", False, None, "cannot connect to 192.0.2.10:554: Connection refused")]
    live = LiveView(config, lambda: states)
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(name="local")
def fixture_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveView]:
    """Bound to 127.0.0.1 without a token."""
    yield from live_view(tmp_path, monkeypatch, "127.0.0.1", token=False)


@pytest.fixture(name="exposed")
def fixture_exposed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveView]:
    """Bound to every interface with a token; the tests still only talk to 127.0.0.1."""
    yield from live_view(tmp_path, monkeypatch, "0.0.0.0", token=True)


def request(
    live: LiveView,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    port = live.server.address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        conn.close()


def test_api_reports_counts_zones_and_down_reason(local: LiveView) -> None:
    local.sink.write(make_result(1, count=3))
    status, headers, body = request(local, "/api/v1/counts")
    assert status == 200 and headers["Content-Type"] == "application/json"
    lobby = json.loads(body)["cameras"]["lobby"]
    assert (lobby["count"], lobby["smoothed"], lobby["seq"]) == (3, 2.5, 1)
    assert lobby["zones"] == {"doors": {"count": 3, "smoothed": 2.5, "alert": True}}
    assert lobby["up"] is False and "Connection refused" in lobby["reason"]
    status, _, body = request(local, "/api/v1/cameras")
    camera = json.loads(body)["cameras"][0]
    assert camera["id"] == "lobby" and camera["zones"][0]["polygon"][2] == [80.0, 120.0]
    assert "url" not in camera


def test_no_page_or_answer_shows_the_camera_password(local: LiveView) -> None:
    local.sink.write(make_result(1))
    bodies = [
        request(local, path)[2] for path in ("/", "/static/app.js", "/api/v1/cameras", "/api/v1/counts")
    ]
    bad = json.dumps({"camera": "lobby", "yaml": "zones: [{id: x, polygon: [[0, 0], [1, 1], [2, 2]]}]"})
    bodies.append(request(local, "/api/v1/validate", "POST", bad.encode())[2])
    for body in bodies:
        assert PASSWORD.encode() not in body and b"viewer:" not in body


def test_frames_are_encoded_once_for_every_viewer_and_never_without_one(local: LiveView) -> None:
    hub = local.hub
    for i in range(5):
        local.sink.write(make_result(i))
    assert hub.encodes == 0  # nobody watched: nothing was encoded
    replies = [request(local, "/api/v1/cameras/lobby/frame.jpg") for _ in range(4)]
    assert hub.encodes == 1  # four viewers of one frame: one encode, the same bytes
    assert len({body for _, _, body in replies}) == 1
    image = cv2.imdecode(np.frombuffer(replies[0][2], np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (120, 160, 3)
    raw = request(local, "/api/v1/cameras/lobby/frame.jpg?raw=1")[2]
    assert hub.encodes == 2 and raw != replies[0][2]  # the editor's frame has no drawings
    time.sleep(hub.min_interval_s)  # web.max_fps: a newer frame is encoded once this has passed
    local.sink.write(make_result(9))
    request(local, "/api/v1/cameras/lobby/frame.jpg")
    assert hub.encodes == 3


def test_a_fast_camera_is_encoded_at_most_max_fps_times_a_second() -> None:
    now = [100.0]
    hub = LiveHub([CameraView("lobby", "file", None)], max_fps=8, clock=lambda: now[0])
    shown = []
    for i in range(64):  # 64 frames processed, and viewed, in one second of the hub's clock
        hub.publish(make_result(i))
        frame = hub.jpeg("lobby")
        assert frame is not None
        shown.append(frame[0])
        now[0] += 1 / 64  # exact in binary: the 1/8 s interval is exactly 8 steps
    assert hub.encodes == 8 and len(set(shown)) == 8
    assert shown[0] == 1 and shown[-1] == 57  # the newest frame each time the interval had passed


def test_history_keeps_one_point_per_second_for_30_minutes(local: LiveView) -> None:
    start = 1_000_000.0
    for second in range(HISTORY_S + 100):
        local.sink.write(make_result(second, count=second % 5, captured_at=start + second + 0.2))
        local.sink.write(make_result(second, count=second % 5, captured_at=start + second + 0.7))
    points = json.loads(request(local, "/api/v1/cameras/lobby/history")[2])["points"]
    assert len(points) == HISTORY_S + 1
    assert points[-1][0] == start + HISTORY_S + 99 and points[0][0] == start + 99
    assert points[-1][1] == (HISTORY_S + 99) % 5  # two frames in that second, same count: their mean


def test_without_a_token_only_addresses_are_served(local: LiveView) -> None:
    """A site that rebinds its own name to 127.0.0.1 (DNS rebinding) sends that name as Host: refused."""
    port = local.server.address[1]
    assert request(local, "/api/v1/counts", headers={"Host": f"evil.example:{port}"})[0] == 403
    assert request(local, "/api/v1/counts", headers={"Host": f"localhost:{port}"})[0] == 200
    assert request(local, "/api/v1/counts", headers={"Host": f"127.0.0.1:{port}"})[0] == 200


def test_every_answer_carries_a_strict_csp(local: LiveView) -> None:
    for path in ("/", "/static/app.js", "/api/v1/counts", "/nowhere"):
        _, headers, _ = request(local, path)
        assert headers["Content-Security-Policy"] == CSP
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "frame-ancestors 'none'" in CSP
    page = request(local, "/")[2].decode()
    assert "<script>" not in page and " style=" not in page and "onclick" not in page


def test_stream_viewers_are_capped(local: LiveView) -> None:
    local.sink.write(make_result(1))
    port = local.server.address[1]
    streams = []
    try:
        for _ in range(2):  # web.max_viewers = 2
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /api/v1/cameras/lobby/stream.mjpeg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head or b"\xff\xd8" not in head:  # the headers, then a first JPEG
                data = sock.recv(65536)
                assert data, f"the stream ended: {head[:200]!r}"
                head += data
            assert head.startswith(b"HTTP/1.0 200") and b"multipart/x-mixed-replace" in head
            streams.append(sock)
        status, _, body = request(local, "/api/v1/cameras/lobby/stream.mjpeg")
        assert status == 503 and b"max_viewers" in body
        streams.pop().close()  # a viewer leaves: its place is free again
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # the next frame makes the left viewer's handler write to a closed socket, and end
            local.sink.write(make_result(2))
            if request(local, "/api/v1/cameras/lobby/frame.jpg")[0] == 200:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                    sock.sendall(
                        b"GET /api/v1/cameras/lobby/stream.mjpeg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                    )
                    if sock.recv(64).startswith(b"HTTP/1.0 200"):
                        break
            time.sleep(0.1)
        else:
            raise AssertionError("the stream slot was not given back")
    finally:
        for sock in streams:
            sock.close()


def test_validate_reports_errors_by_key_path(local: LiveView) -> None:
    def check(text: str) -> dict[str, object]:
        body = json.dumps({"camera": "lobby", "yaml": text}).encode()
        status, _, reply = request(local, "/api/v1/validate", "POST", body)
        assert status == 200
        return dict(json.loads(reply))

    good = (
        "zones:\n  - id: hall\n    polygon: [[1, 1], [50, 1], [50, 40]]\n"
        "exclude:\n  - polygon: [[60, 60], [70, 60], [70, 70]]\n"
        "lines:\n  - id: door\n    points: [[0, 10], [100, 10]]\n    in: inside\n    out: outside\n"
    )
    assert check(good) == {"valid": True, "errors": []}
    bad = check(
        "zones:\n  - id: Hall\n    polygon: [[1, 1], [2, 2], [3, 3]]\n"
        "lines:\n  - id: door\n    points: [[0, 10], [0, 10]]\n    in: a\n    out: b\n"
    )
    paths = {e["path"] for e in bad["errors"]}  # type: ignore[attr-defined]
    assert bad["valid"] is False
    assert {"cameras[0].zones[0].id", "cameras[0].zones[0].polygon", "cameras[0].lines[0].points"} <= paths
    wrong_key = check("url: rtsp://elsewhere/\n")
    assert wrong_key["errors"] == [
        {"path": "cameras[0].url", "message": "only zones, exclude, lines can be checked here"}
    ]
    assert check("zones: [")["valid"] is False
    assert request(local, "/api/v1/validate", "POST", b"not json")[0] == 400


def test_exposed_server_refuses_requests_without_the_token(exposed: LiveView) -> None:
    for path in (
        "/",
        "/static/app.js",
        "/api/v1/cameras",
        "/api/v1/counts",
        "/api/v1/cameras/lobby/stream.mjpeg",
    ):
        status, headers, body = request(exposed, path)
        assert status == 401, path
        assert TOKEN.encode() not in body
    assert (
        request(exposed, "/api/v1/counts", headers={"Authorization": "Bearer wrong-token-0123456789"})[0]
        == 401
    )
    assert request(exposed, "/api/v1/validate", "POST", b"{}")[0] == 401
    assert request(exposed, "/api/v1/counts", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    status, headers, _ = request(exposed, f"/?token={TOKEN}")
    assert status == 303 and headers["Location"] == "/"  # the token leaves the address bar ...
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert request(exposed, "/", headers={"Cookie": cookie})[0] == 200  # ... for an HttpOnly cookie


def test_token_must_be_a_reference_and_is_required_off_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crowdwatch.config import ConfigError

    monkeypatch.setenv("CAM_PASSWORD", PASSWORD)
    with pytest.raises(ConfigError, match=r"web: .*reachable from other machines: set web.token"):
        load_config(write_config(tmp_path, CONFIG % ("0.0.0.0", "null")))
    with pytest.raises(ConfigError, match=r"web.token: write the token as \$\{credential:NAME\}"):
        load_config(write_config(tmp_path, CONFIG % ("0.0.0.0", TOKEN)))
    monkeypatch.setenv("WEB_TOKEN", "short")
    with pytest.raises(ConfigError, match=r"web.token: the token must be at least 16"):
        load_config(write_config(tmp_path, CONFIG % ("0.0.0.0", "${env:WEB_TOKEN}")))
    assert load_config(write_config(tmp_path, CONFIG % ("127.0.0.2", "null"))).web.token is None


def test_stop_ends_open_streams(local: LiveView) -> None:
    local.sink.write(make_result(1))
    port = local.server.address[1]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /api/v1/cameras/lobby/stream.mjpeg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert sock.recv(64).startswith(b"HTTP/1.0 200")
    ended = threading.Event()

    def drain() -> None:
        while sock.recv(65536):
            pass
        ended.set()

    threading.Thread(target=drain, daemon=True).start()
    local.stop()
    assert ended.wait(10), "an open stream kept its connection after stop"
    sock.close()


def test_binds_loopback_by_default(tmp_path: Path) -> None:
    text = "cameras:\n  - {id: lobby, url: clip.mp4}\nweb: {enabled: true, port: 0}\n"
    config = load_config(write_config(tmp_path, text))
    assert (config.web.address, config.web.token) == ("127.0.0.1", None)
    live = LiveView(config, tuple)
    live.start()
    try:
        assert live.server.address[0] == "127.0.0.1"
        assert request(live, "/api/v1/cameras")[0] == 200  # no token needed on loopback
    finally:
        live.stop()
