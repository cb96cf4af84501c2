"""The live view's HTTP server: the page, its JSON API, MJPEG streams and the shape check.

A server of its own, beside the metrics server: Prometheus scrapes ``/metrics`` unauthenticated and
on its own schedule, while the page is for people, may need a token, and holds long-lived streams
that are capped; separate ports keep a firewall rule, a token and a viewer cap from touching the
scrape path. Binding happens in the constructor (a busy port is found before the model loads).

Routes (all GET but the last): ``/`` (the page), ``/static/*``, ``/api/v1/cameras`` (layout, shapes),
``/api/v1/counts`` (latest counts, up/down with the reason), ``/api/v1/cameras/ID/history`` (30 min,
one point per second), ``/api/v1/cameras/ID/frame.jpg`` (``?raw=1``: without drawings, for the
editor), ``/api/v1/cameras/ID/stream.mjpeg`` (at most ``max_viewers`` at once, 503 beyond),
``/api/v1/cameras/ID/heatmap.jpg``, and ``POST /api/v1/validate``.

With a token every request needs it: ``Authorization: Bearer TOKEN``, the ``crowdwatch_token`` cookie,
or ``?token=TOKEN`` (on a page this sets the cookie and redirects to the same address without it).
Without it: 401. Without a token (loopback), the ``Host`` must be an IP address or ``localhost`` (403
otherwise: DNS rebinding). Every answer carries a strict Content-Security-Policy (scripts and styles from this
server only, no inline code, no framing).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from crowdwatch.httpbind import bind_http, url_of
from crowdwatch.web.hub import LiveHub
from crowdwatch.web.validate import MAX_BLOCK_BYTES

__all__ = ["COOKIE", "CSP", "Validator", "WebServer"]

logger = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
COOKIE = "crowdwatch_token"
#: How long a stream waits for a frame before checking that the server still runs.
STREAM_POLL_S = 1.0
BOUNDARY = "crowdwatch-frame"
_NEEDS_TOKEN = json.dumps(
    {"error": "a token is needed: open /?token=TOKEN once, or send Authorization: Bearer TOKEN"}
).encode()
#: (camera id, YAML text) -> [(key path, message)]
Validator = Callable[[str, str], list[tuple[str, str]]]

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}
_CAMERA_ROUTE = re.compile(
    r"^/api/v1/cameras/([a-z0-9][a-z0-9_-]{0,62})/(history|frame\.jpg|stream\.mjpeg|heatmap\.jpg)$"
)


def _load_static() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("crowdwatch.web") / "static"
    return {route: ((folder / name).read_bytes(), kind) for route, (name, kind) in _STATIC.items()}


class _Handler(BaseHTTPRequestHandler):
    server_version = "crowdwatch"
    sys_version = ""
    app: WebServer  # set on the subclass WebServer makes

    # -- plumbing
    def _headers(self, status: int, content_type: str, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")

    def _send(self, status: int, content_type: str, body: bytes, extra: dict[str, str] | None = None) -> None:
        self._headers(status, content_type, len(body))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, body: object) -> None:
        self._send(status, "application/json", json.dumps(body).encode())

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def log_message(self, format: str, *args: Any) -> None:  # http.server's name
        pass  # requests are logged in _log_request, without their query string (it may hold the token)

    def _log_request(self, status: str) -> None:
        logger.debug("web: %s %s -> %s", self.command, urlsplit(self.path).path, status)

    # -- access
    def _offered_tokens(self, query: dict[str, list[str]]) -> list[str]:
        offered = list(query.get("token", []))
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            offered.append(auth.removeprefix("Bearer ").strip())
        try:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            cookie = SimpleCookie()
        if COOKIE in cookie:
            offered.append(cookie[COOKIE].value)
        return offered

    def _host_is_an_address(self) -> bool:
        """Whether the Host header names an IP address or localhost: a page of another site that
        rebinds its own name to 127.0.0.1 (DNS rebinding) sends its name, and is refused."""
        host = self.headers.get("Host", "")
        name = host[1:].partition("]")[0] if host.startswith("[") else host.rpartition(":")[0] or host
        if name == "localhost":
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def _allowed(self, url: Any, query: dict[str, list[str]]) -> bool:
        token = self.app.token
        if token is None:
            if not self._host_is_an_address():
                self._error(403, "without web.token, the page answers only to an IP address or localhost")
                return False
            return True
        expected = token.encode()
        if not any(hmac.compare_digest(t.encode(), expected) for t in self._offered_tokens(query)):
            self._send(401, "application/json", _NEEDS_TOKEN, {"WWW-Authenticate": "Bearer"})
            return False
        if "token" in query and not url.path.startswith("/api/"):
            # keep it in an HttpOnly cookie, and out of the address bar and the browser history
            rest = {k: v for k, v in query.items() if k != "token"}
            location = url.path + (f"?{urlencode(rest, doseq=True)}" if rest else "")
            cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
            self._send(303, "text/plain", b"", {"Location": location, "Set-Cookie": cookie})
            return False
        return True

    # -- routes
    def do_GET(self) -> None:  # http.server's name
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._allowed(url, query):
            self._log_request("refused")
            return
        self._log_request("ok")
        static = self.app.static.get(url.path)
        if static is not None:
            self._send(200, static[1], static[0])
        elif url.path == "/api/v1/cameras":
            self._json(200, self.app.cameras())
        elif url.path == "/api/v1/counts":
            self._json(200, {"time": time.time(), "cameras": self.app.hub.counts()})
        else:
            match = _CAMERA_ROUTE.match(url.path)
            if match is None or match.group(1) not in self.app.hub.camera_ids:
                self._error(404, "not found: see / for the page, /api/v1/cameras for the API")
                return
            camera, what = match.groups()
            if what == "history":
                self._json(200, {"camera": camera, "points": self.app.hub.history(camera)})
            elif what == "frame.jpg":
                self._frame(camera, raw=query.get("raw", ["0"])[0] == "1")
            elif what == "heatmap.jpg":
                self._heatmap(camera)
            else:
                self._stream(camera)

    do_HEAD = do_GET  # http.server's name

    def do_POST(self) -> None:  # http.server's name
        url = urlsplit(self.path)
        if not self._allowed(url, {}):
            self._log_request("refused")
            return
        self._log_request("ok")
        if url.path != "/api/v1/validate":
            self._error(404, "not found: POST goes to /api/v1/validate")
            return
        try:
            length = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BLOCK_BYTES + 1024:
            self._error(413 if length > 0 else 411, f"send a JSON body of at most {MAX_BLOCK_BYTES} bytes")
            return
        try:
            body = json.loads(self.rfile.read(length))
            camera, text = body["camera"], body["yaml"]
            if not isinstance(camera, str) or not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self._error(400, 'expected JSON {"camera": ID, "yaml": TEXT}')
            return
        errors = self.app.validate(camera, text)
        self._json(200, {"valid": not errors, "errors": [{"path": p, "message": m} for p, m in errors]})

    def _frame(self, camera: str, raw: bool) -> None:
        frame = self.app.hub.jpeg(camera, "raw" if raw else "annotated")
        if frame is None:
            self._error(404, f"{camera}: no frame yet")
            return
        self._send(200, "image/jpeg", frame[1], {"X-Frame-Number": str(frame[0])})

    def _heatmap(self, camera: str) -> None:
        folder = self.app.heatmaps
        path = None if folder is None else folder / f"{camera}.jpg"
        try:
            data = path.read_bytes() if path is not None else None
        except FileNotFoundError:
            data = None
        if data is None:
            self._error(404, f"{camera}: no heatmap (output.heatmaps off, or none written yet)")
            return
        self._send(200, "image/jpeg", data)

    def _stream(self, camera: str) -> None:
        if not self.app.viewers.acquire(blocking=False):
            self._error(503, f"too many live streams (web.max_viewers = {self.app.max_viewers})")
            return
        try:
            self._headers(200, f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.end_headers()
            if self.command == "HEAD":
                return
            hub, seq, sent = self.app.hub, 0, 0.0
            while not hub.closed.is_set() and not self.app.stopping.is_set():
                now = hub.wait_for_frame(camera, seq, STREAM_POLL_S)
                if now == seq:
                    continue
                time.sleep(max(0.0, sent + hub.min_interval_s - time.monotonic()))  # at most max_fps
                frame = hub.jpeg(camera)
                if frame is None or frame[0] == seq:
                    continue
                seq, data = frame
                sent = time.monotonic()
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                self.wfile.write(head.encode() + data + b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the viewer went away: its slot is free again
        finally:
            self.app.viewers.release()


class WebServer:
    """Serves the live view of ``hub``; ``start()`` begins serving, ``stop()`` shuts it down."""

    def __init__(
        self,
        hub: LiveHub,
        *,
        address: str = "127.0.0.1",
        port: int = 9110,
        token: str | None = None,
        max_viewers: int = 8,
        validate: Validator | None = None,
        heatmaps: Path | None = None,
    ) -> None:
        self.hub = hub
        self.token = token
        self.max_viewers = max_viewers
        self.viewers = threading.BoundedSemaphore(max_viewers)
        self.heatmaps = heatmaps
        self.stopping = threading.Event()
        self._validate = validate
        self.static = _load_static()
        handler = type("Handler", (_Handler,), {"app": self})
        self._server = bind_http(address, port, handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="web-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """``http://host:port/`` (an IPv6 host in brackets)."""
        return f"{url_of(self._server)}/"

    def validate(self, camera: str, text: str) -> list[tuple[str, str]]:
        if self._validate is None:
            return [("", "no config to check against")]
        return self._validate(camera, text)

    def cameras(self) -> dict[str, object]:
        cameras = []
        for camera in self.hub.camera_ids:
            view = self.hub.view(camera)
            cameras.append(
                {
                    "id": view.id,
                    "kind": view.kind,
                    "fps": view.fps,
                    "zones": [
                        {
                            "id": z.id,
                            "polygon": z.polygon.tolist(),
                            "high": z.high,
                            "low": z.low,
                            "for_s": z.for_s,
                        }
                        for z in view.zones
                    ],
                    "exclude": [polygon.tolist() for polygon in view.exclusions],
                    "lines": list(view.lines),
                    "heatmap": self.heatmaps is not None,
                }
            )
        return {"cameras": cameras, "max_viewers": self.max_viewers}

    def start(self) -> WebServer:
        if not self._thread.is_alive():
            self._thread.start()
            logger.info("web: live view on %s%s", self.url, " (token required)" if self.token else "")
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
