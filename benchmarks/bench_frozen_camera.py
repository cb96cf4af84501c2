"""Frozen-camera detection time: a real RTSP server paused with SIGSTOP, H.264 with and without B-frames.

    python benchmarks/bench_frozen_camera.py                         # the site defaults: read 5 s, stale 10 s
    python benchmarks/bench_frozen_camera.py --read-timeout 2 --stale-after 3 --runs 3

For each clip kind and run: a CameraReader on the real RTSP server (tests/support/rtsp_server.py under
Debian's python3 with GStreamer), frames flowing for 2 s, then SIGSTOP; prints as JSON the seconds until
the reader declared the camera down, and how many frames it delivered after the freeze (frames whose
packets were on the wire at the freeze arrive within a few ms; anything later is a flushed frame).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.rtsp_fixtures import RtspServer, make_clip

from crowdwatch.capture.base import NullEvents
from crowdwatch.capture.reader import CameraReader
from crowdwatch.config import CameraConfig


class FrameTimes(NullEvents):
    def __init__(self) -> None:
        self.captured: list[float] = []

    def frame_captured(self, camera: str, captured_at: float) -> None:
        self.captured.append(time.monotonic())


def one_run(server: RtspServer, mount: str, read_timeout: float, stale_after: float) -> dict[str, float]:
    camera = CameraConfig.model_validate(
        {
            "id": "cam",
            "url": server.url(mount),
            "fps": None,
            "read_timeout_s": read_timeout,
            "stale_after_s": stale_after,
            "reconnect": {"initial_s": 60.0, "max_s": 60.0},
        }
    )
    events = FrameTimes()
    woke = threading.Event()
    reader = CameraReader(camera, events=events, on_frame=woke)
    reader.start()
    try:
        if not woke.wait(10):
            raise RuntimeError(f"{mount}: no frame within 10 s")
        time.sleep(2.0)
        server.freeze()
        frozen = time.monotonic()
        while reader.up and time.monotonic() - frozen < 3 * (read_timeout + stale_after):
            time.sleep(0.01)
        down_s = time.monotonic() - frozen
        time.sleep(max(0.0, frozen + 3 * read_timeout + 0.5 - time.monotonic()))
        late = [t - frozen for t in events.captured if t > frozen]
        return {
            "down_s": round(down_s, 2),
            "frames_after_freeze": len(late),
            "last_frame_after_freeze_s": round(max(late), 3) if late else 0.0,
        }
    finally:
        server.thaw()
        reader.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--read-timeout", type=float, default=5.0, help="read_timeout_s (default 5)")
    parser.add_argument("--stale-after", type=float, default=10.0, help="stale_after_s (default 10)")
    parser.add_argument("--runs", type=int, default=1, help="runs per clip kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = {
            "/plain": make_clip(folder / "plain.mp4", seconds=120, fps=10),
            "/bframes": make_clip(folder / "bframes.mp4", seconds=120, fps=10, bframes=3),
        }
        results: dict[str, list[dict[str, float]]] = {}
        for mount, clip in clips.items():
            for _ in range(args.runs):
                server = RtspServer({mount: f"file:{clip}"}).start()
                try:
                    results.setdefault(mount, []).append(
                        one_run(server, mount, args.read_timeout, args.stale_after)
                    )
                finally:
                    server.stop()
    print(
        json.dumps(
            {"read_timeout_s": args.read_timeout, "stale_after_s": args.stale_after, "runs": results},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
