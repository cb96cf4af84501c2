"""Live view cost: pipeline frames/s with 0 and with N viewers streaming, side by side in one run.

    python benchmarks/bench_webview.py                          # 2 cameras, 4 viewers, 3 rounds of 2 x 30 s
    python benchmarks/bench_webview.py --phase-s 20 --rounds 2 --longest-side 320 --json out.json

Runs the real ``crowdwatch run`` (a subprocess) on looped copies of the synthetic demo clip, every frame
processed (``fps: null``: the model is the bottleneck, so any CPU the live view takes shows as lost
frames), with the live view on. It then alternates phases: no viewer, then ``--viewers`` MJPEG streams
spread over the cameras (each a thread reading ``/api/v1/cameras/ID/stream.mjpeg`` to the end), for
``--rounds`` rounds; alternating keeps drift (clock boost, other load) from favouring one side.
Frames/s per phase come from ``crowdwatch_frames_processed_total`` on /metrics, and the CPU seconds
the process spent per frame from ``process_cpu_seconds_total`` (steadier than frames/s on a shared
machine). Prints JSON: frames/s per phase, the means, the loss in percent, CPU per frame, and the
frames each viewer received. Target: loss <= 5 %.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np
import yaml

from crowdwatch.demo import make_demo_clip, render_frames
from crowdwatch.frames import Result
from crowdwatch.web.hub import CameraView, LiveHub, ZoneView

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.pipeline_harness import running_pipeline


def scrape(pipeline: Any) -> tuple[float, float]:
    """(frames processed by all cameras, CPU seconds of the pipeline process) from /metrics."""
    samples = pipeline.scrape()
    frames = sum(value for (name, _), value in samples.items() if name == "crowdwatch_frames_processed_total")
    return frames, samples.get(("process_cpu_seconds_total", frozenset()), 0.0)


class Viewer(threading.Thread):
    """Reads one MJPEG stream until stopped; counts the frames it received."""

    def __init__(self, port: int, camera: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.camera, self.stop, self.frames = port, camera, stop, 0

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            request = f"GET /api/v1/cameras/{self.camera}/stream.mjpeg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            sock.sendall(request.encode())
            tail = b""
            while not self.stop.is_set():
                data = sock.recv(1 << 16)
                if not data:
                    break
                chunk = tail + data
                self.frames += chunk.count(b"--crowdwatch-frame\r\n")
                tail = chunk[-24:]


def encode_ms(width: int, height: int, frames: list[np.ndarray]) -> float:
    """Milliseconds the live view spends on one new frame when watched: points, count, a zone drawn,
    and the JPEG encoded (once, whatever the number of viewers), on this machine, in this process."""
    zone = ZoneView("left", np.array([[0, 0], [width / 2, 0], [width / 2, height], [0, height]], float))
    hub = LiveHub([CameraView("cam", "file", None, (zone,))], max_fps=1e9)  # every frame, for the timing
    points = np.random.default_rng(0).uniform([0, 0], [width, height], (40, 2)).astype(np.float32)
    started = time.perf_counter()
    for i, image in enumerate(frames * 5):
        hub.publish(Result("cam", i, time.time(), image, points, 40, 0.0, {"left": 20}, {"left": False}))
        hub.jpeg("cam")
    return 1000 * (time.perf_counter() - started) / (len(frames) * 5)


def phase(pipeline: Any, seconds: float) -> tuple[float, float]:
    """(frames/s, CPU seconds per frame) over ``seconds``."""
    (frames0, cpu0), t0 = scrape(pipeline), time.monotonic()
    time.sleep(seconds)
    frames1, cpu1 = scrape(pipeline)
    frames = frames1 - frames0
    return frames / (time.monotonic() - t0), (cpu1 - cpu0) / frames if frames else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--viewers", type=int, default=4)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--phase-s", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup-s", type=float, default=20.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--longest-side", type=int, default=None, help="model input size (the frames stay)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = make_demo_clip(folder / "demo.mp4", width=width, height=height, seconds=20, fps=10)
        config = {
            "model": {"device": args.device, "longest_side": args.longest_side},
            "defaults": {"fps": None, "loop": True},
            "cameras": [{"id": f"cam{i}", "url": str(clip)} for i in range(args.cameras)],
            "output": {"dir": str(folder / "out")},
            "metrics": {"port": 0},
            "web": {"enabled": True, "port": 0, "max_viewers": max(8, args.viewers)},
        }
        (folder / "site.yaml").write_text(yaml.safe_dump(config))
        # The model's threads as configured, not the tests' one thread (omp_threads=None).
        with running_pipeline(folder / "site.yaml", folder, ready_timeout=180, omp_threads=None) as pipeline:
            port = int(pipeline.wait_for_log(r"web: live view on http://[^:]+:(\d+)/", 180).group(1))
            time.sleep(args.warmup_s)
            idle, watched, received = [], [], []
            for _ in range(args.rounds):
                idle.append(phase(pipeline, args.phase_s))
                stop = threading.Event()
                viewers = [Viewer(port, f"cam{i % args.cameras}", stop) for i in range(args.viewers)]
                for viewer in viewers:
                    viewer.start()
                watched.append(phase(pipeline, args.phase_s))
                stop.set()
                for viewer in viewers:
                    viewer.join(timeout=10)
                received.append([viewer.frames for viewer in viewers])
    result = {
        "cameras": args.cameras,
        "size": args.size,
        "viewers": args.viewers,
        "longest_side": args.longest_side,
        "phase_s": args.phase_s,
        "fps_no_viewer": [round(v[0], 3) for v in idle],
        "fps_with_viewers": [round(v[0], 3) for v in watched],
        "mean_no_viewer": round(mean(v[0] for v in idle), 3),
        "mean_with_viewers": round(mean(v[0] for v in watched), 3),
        "loss_percent": round(100 * (1 - mean(v[0] for v in watched) / mean(v[0] for v in idle)), 2),
        "cpu_s_per_frame_no_viewer": round(mean(v[1] for v in idle), 4),
        "cpu_s_per_frame_with_viewers": round(mean(v[1] for v in watched), 4),
        "frames_received_per_viewer": received,
        "draw_and_encode_ms_per_frame": round(
            encode_ms(width, height, render_frames(width, height, 20, 40)), 2
        ),
        "cpu": cpu_model(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
