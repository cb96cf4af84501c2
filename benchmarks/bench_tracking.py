"""Cost of flow per frame: tracking a camera's head points, two counting lines and a dwell zone, at 30,
300 and 3000 points on a 1280x720 frame sampled at 5 frames/s.

    PYTHONPATH=$PWD python benchmarks/bench_tracking.py [--frames 50] [--model]

The crowd is a grid of people (spacing from the frame's area and the count) each walking its own way at
20-120 px/s (dense crowds move slowly: at 3000 points the spacing is ~17 px, so speeds are scaled to
keep a step under half of it, as a real crowd that dense would), with 5% of heads missed and one false
point per 100 per frame; ``tracking.max_speed_px_s`` is set as a user would: 1.25 x the fastest walker
(150 px/s for the sparse crowds, 43 px/s at 3000 points). Prints the median and 95th percentile
milliseconds per frame of :meth:`crowdwatch.flow.CameraFlow.update`, and the share of a model time per
frame: ``--model-s`` seconds (default 2.9 s: the int8 OpenVINO model at 1280x720 on an AMD EPYC, 2
cores, docs/results.md), or with ``--model`` the packaged torch model measured here on a 1280x720 frame.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from crowdwatch.flow import CameraFlow
from crowdwatch.lines import CountingLine
from crowdwatch.tracking import TrackerSettings
from crowdwatch.zones import Zone

WIDTH, HEIGHT, FPS = 1280, 720, 5.0


def top_speed(n: int) -> float:
    """The crowd's fastest walker in px/s: 120, or less where a step at 5 frames/s would pass 0.4 of the
    spacing (a crowd that dense moves slower)."""
    spacing = float(np.sqrt(WIDTH * HEIGHT / n))
    return 120.0 * min(1.0, 0.4 * spacing * FPS / 120)


def crowd(n: int, frames: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    spacing = float(np.sqrt(WIDTH * HEIGHT / n))
    cols = int(np.ceil(WIDTH / spacing))
    grid = np.stack(np.meshgrid(np.arange(cols), np.arange(int(np.ceil(n / cols)))), -1).reshape(-1, 2)[:n]
    start = (grid + 0.5) * spacing + rng.uniform(-0.1, 0.1, (n, 2)) * spacing
    angle = rng.uniform(0, 2 * np.pi, n)
    speed = rng.uniform(20, 120, (n, 1)) * top_speed(n) / 120
    velocity = speed * np.stack([np.cos(angle), np.sin(angle)], 1)
    out = []
    for i in range(frames):
        points = start + velocity * (i / FPS)
        kept = points[rng.random(n) >= 0.05]
        false = rng.uniform([0, 0], [WIDTH, HEIGHT], (rng.poisson(n / 100), 2))
        out.append(np.concatenate([kept, false]))
    return out


def flow(max_speed_px_s: float) -> CameraFlow:
    lines = [
        CountingLine("across", (100.0, 360.0), (1180.0, 360.0)),
        CountingLine("down", (640.0, 50.0), (640.0, 670.0)),
    ]
    hall = Zone("hall", np.array([[200, 100], [1000, 100], [1000, 600], [200, 600]], np.float32))
    tracker = TrackerSettings(max_speed_px_s=max_speed_px_s)
    return CameraFlow(lines, dwell_zones=[hall], dwell_alert_s={"hall": 30.0}, tracker=tracker)


def model_seconds() -> float:
    from crowdwatch.demo import render_frames
    from crowdwatch.model import Predictor

    predictor = Predictor.from_checkpoint("default")
    frame = render_frames(WIDTH, HEIGHT, 1, 40)[0]
    predictor.predict([frame])
    started = time.perf_counter()
    predictor.predict([frame])
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--model-s", type=float, default=2.9, help="model seconds per 1280x720 frame")
    parser.add_argument("--model", action="store_true", help="measure the packaged torch model instead")
    args = parser.parse_args()
    model_s = model_seconds() if args.model else args.model_s
    print(f"model time per 1280x720 frame: {model_s:.2f} s ({'measured, torch' if args.model else 'given'})")
    print("| points | median ms/frame | p95 ms/frame | share of model time | crossings |")
    print("|---|---|---|---|---|")
    for n in (30, 300, 3000):
        frames = crowd(n, args.frames, seed=n)
        camera = flow(1.25 * top_speed(n))
        times, crossings = [], 0
        for i, points in enumerate(frames):
            started = time.perf_counter()
            reading = camera.update(points, i / FPS)
            times.append(time.perf_counter() - started)
            crossings += len(reading.crossings)
        times = times[2:]  # the first frames only start tracks
        median = statistics.median(times)
        p95 = sorted(times)[int(0.95 * (len(times) - 1))]
        share = 100 * median / model_s
        print(f"| {n} | {1000 * median:.2f} | {1000 * p95:.2f} | {share:.2f}% | {crossings} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
