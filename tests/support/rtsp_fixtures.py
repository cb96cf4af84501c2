"""Real-RTSP test fixtures: tiny H.264 clips made with Debian ffmpeg, served by tests/support/rtsp_server.py.

The root ``tests/conftest.py`` registers this module as a plugin: a test takes the fixtures below as
arguments, with no import.
Every process started here is stopped by PID in a ``finally``.

- ``make_clip(path, seconds=3, fps=10, size=(320, 240), bframes=0)``: an H.264 mp4 (libx264, keyframe
  every second; B-frames when ``bframes`` > 0);
  the ``clip_factory`` fixture returns it (or skips without ffmpeg).
- ``rtsp_clip`` (session): one such clip, shared by the tests of a session.
- ``rtsp_server``: an :class:`RtspServer` already started with mounts ``/clip`` (the clip, passthrough)
  and ``/live`` (a live 320x240 10 fps test pattern); ``.url("/live")``, ``.kill()``, ``.start()``
  (same port), ``.freeze()``/``.thaw()`` (SIGSTOP/SIGCONT).
- The fixtures skip (with the reason) when /usr/bin/python3 lacks GStreamer's RTSP server or ffmpeg is
  missing; ``requires_rtsp``/``requires_ffmpeg`` are the same checks as skip markers.
"""

from __future__ import annotations

import functools
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
READY_TIMEOUT_S = 10.0


@functools.cache
def gstreamer_missing() -> str | None:
    """Why the RTSP server cannot run here, or None when it can."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found"
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    result = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30, check=False)
    if result.returncode != 0:
        return f"{SYSTEM_PYTHON} lacks python3-gi / gir1.2-gst-rtsp-server-1.0"
    return None


def ffmpeg_missing() -> str | None:
    return None if shutil.which("ffmpeg") else "Debian ffmpeg (with libx264) not on PATH"


requires_ffmpeg = pytest.mark.skipif(ffmpeg_missing() is not None, reason=str(ffmpeg_missing()))
requires_rtsp = pytest.mark.skipif(
    gstreamer_missing() is not None or ffmpeg_missing() is not None,
    reason=str(gstreamer_missing() or ffmpeg_missing()),
)


def make_clip(
    path: Path, seconds: float = 3, fps: int = 10, size: tuple[int, int] = (320, 240), bframes: int = 0
) -> Path:
    """Write a small H.264 test clip (ffmpeg testsrc) and return its path. ``bframes`` > 0 makes a clip
    with that many B-frames between references (a decoder then holds frames back for reordering)."""
    width, height = size
    if bframes:
        encoder = ["-preset", "veryfast", "-bf", str(bframes), "-x264-params", "b-adapt=0"]
    else:
        encoder = ["-preset", "ultrafast", "-tune", "zerolatency"]
    cmd = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc=size={width}x{height}:rate={fps}:duration={seconds}",
        "-c:v", "libx264", *encoder, "-pix_fmt", "yuv420p",
        "-g", str(fps), "-threads", "1", str(path),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return path


class RtspServer:
    """One tests/support/rtsp_server.py process; restartable on the same port."""

    def __init__(self, mounts: dict[str, str], port: int = 0) -> None:
        self.mounts = dict(mounts)
        self.port = port
        self.process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "server not running"
        return self.process.pid

    def url(self, mount: str, userinfo: str = "") -> str:
        return f"rtsp://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}{mount}"

    def argv(self) -> list[str]:
        argv = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        for path, spec in self.mounts.items():
            argv += ["--mount", f"{path}={spec}"]
        return argv

    def start(self, retry_for_s: float = 5.0) -> RtspServer:
        """Start (on ``self.port``, or a free port the first time) and wait for ``READY``."""
        deadline = time.monotonic() + retry_for_s
        while True:
            try:
                self._start_once()
                return self
            except RuntimeError:
                if self.port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # the old socket may linger briefly after a kill

    def _start_once(self) -> None:
        assert self.process is None, "already running"
        process = subprocess.Popen(
            self.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self.process = process
        assert process.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        line = ""
        while time.monotonic() < deadline and process.poll() is None:
            ready, _, _ = select.select([process.stdout], [], [], 0.1)
            if ready:
                line = process.stdout.readline()
                break
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line!r}")
        self.port = int(line.split()[1])

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: the server vanishes without closing its sessions (a camera losing power)."""
        self.stop(sig=signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        try:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)  # a frozen process cannot handle SIGTERM
                os.kill(process.pid, sig)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
        finally:
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture(scope="session", name="rtsp_clip")
def fixture_rtsp_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if ffmpeg_missing():
        pytest.skip(str(ffmpeg_missing()))
    return make_clip(tmp_path_factory.mktemp("rtsp") / "clip.mp4")


@pytest.fixture(name="clip_factory")
def fixture_clip_factory() -> Callable[..., Path]:
    """``make_clip``, or a skip when ffmpeg is missing."""
    if ffmpeg_missing():
        pytest.skip(str(ffmpeg_missing()))
    return make_clip


@pytest.fixture(name="rtsp_server")
def fixture_rtsp_server(rtsp_clip: Path) -> Iterator[RtspServer]:
    reason = gstreamer_missing()
    if reason:
        pytest.skip(reason)
    server = RtspServer({"/clip": f"file:{rtsp_clip}", "/live": "pattern:320x240@10"})
    try:
        yield server.start()
    finally:
        server.stop()


def start_server(mounts: dict[str, str], port: int = 0) -> RtspServer:
    """Start a server with custom mounts; the caller stops it (``server.stop()``) in a ``finally``."""
    return RtspServer(mounts, port).start()


__all__: Sequence[str] = [
    "RtspServer",
    "fixture_clip_factory",
    "fixture_rtsp_clip",
    "fixture_rtsp_server",
    "make_clip",
    "requires_ffmpeg",
    "requires_rtsp",
    "start_server",
]
