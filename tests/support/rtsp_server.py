#!/usr/bin/python3
"""A small RTSP server for tests, built on GStreamer's gst-rtsp-server.

Runs under Debian's /usr/bin/python3 (the only interpreter with python3-gi), as its own process:

    /usr/bin/python3 tests/support/rtsp_server.py --port 0 --mount /clip=file:/tmp/clip.mp4 \\
        --mount /live=pattern:320x240@10

Mount specs:
  file:PATH            an H.264 mp4 passed through unchanged (each client starts at frame 0 and the
                       stream ends at the end of the file)
  pattern:WxH@FPS      a live test pattern encoded with x264 (shared by all clients)

Binds 127.0.0.1 only. Prints ``READY <port>`` on stdout once it listens (``--port 0`` picks a free
port), and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

_PATTERN = re.compile(r"^(\d+)x(\d+)@(\d+)$")


def launch_line(spec: str) -> tuple[str, bool]:
    """(gst-launch description, shared) for one mount spec."""
    kind, _, arg = spec.partition(":")
    if kind == "file" and arg:
        location = arg.replace("\\", "\\\\").replace('"', '\\"')
        return f'( filesrc location="{location}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )', False
    match = _PATTERN.match(arg)
    if kind == "pattern" and match:
        width, height, fps = match.groups()
        return (
            f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},"
            f"framerate={fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
            f"threads=1 ! rtph264pay name=pay0 pt=96 config-interval=1 )"
        ), True
    raise argparse.ArgumentTypeError(f"bad mount spec {spec!r}: expected file:PATH or pattern:WxH@FPS")


def parse_mount(text: str) -> tuple[str, str, bool]:
    path, sep, spec = text.partition("=")
    if not sep or not path.startswith("/"):
        raise argparse.ArgumentTypeError(f"bad mount {text!r}: expected /path=SPEC")
    return (path, *launch_line(spec))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--mount", type=parse_mount, action="append", required=True, help="/path=SPEC")
    args = parser.parse_args(argv)

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for path, launch, shared in args.mount:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(shared)
        mounts.add_factory(path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
