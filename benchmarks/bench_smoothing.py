"""Step response of the smoothed count: a jump from 10 to 40 people, how long until it follows.

    PYTHONPATH=$PWD python benchmarks/bench_smoothing.py

"Follows" = the smoothed count is within 1 person of 40. Time is measured from the capture time of
the first frame that shows 40. Rows: smoothing windows x sampling rates, and the same at 2 frames/s
with half the frames dropped at random (seeded), to show that the response is set by the window in
seconds, not by the number of frames. Also prints the time-weighted mean's cost per update.
"""

from __future__ import annotations

import time

import numpy as np

from crowdwatch.smoothing import WindowMean

T0 = 1_800_000_000.0


def follow_seconds(window_s: float, fps: float, drop: float = 0.0, seed: int = 0) -> tuple[float, int]:
    """(seconds after the jump, frames after the jump) until the smoothed count is within 1 of 40."""
    rng = np.random.default_rng(seed)
    smoother = WindowMean(window_s)
    for i in range(int(3 * window_s * fps)):
        smoother.update(T0 + i / fps, 10)
    jump = T0 + int(3 * window_s * fps) / fps
    k, frames = 0, 0
    while True:
        t = jump + k / fps
        k += 1
        if k > 1 and rng.random() < drop:
            continue  # a dropped frame (never the first one that shows the jump)
        frames += 1
        if smoother.update(t, 40) >= 39:
            return t - jump, frames


def main() -> None:
    print("| window_s | frames/s | dropped | seconds to within 1 of 40 | frames |")
    print("|---|---|---|---|---|")
    for window_s in (5.0, 10.0, 30.0):
        for fps, drop in ((2.0, 0.0), (5.0, 0.0), (2.0, 0.5)):
            seconds, frames = follow_seconds(window_s, fps, drop)
            print(f"| {window_s:g} | {fps:g} | {drop:.0%} | {seconds:.1f} | {frames} |")
    smoother = WindowMean(10.0)
    n = 200_000
    started = time.perf_counter()
    for i in range(n):
        smoother.update(T0 + i * 0.2, i % 50)
    per_update = (time.perf_counter() - started) / n
    print(f"\nWindowMean.update: {per_update * 1e6:.2f} us per frame (window 10 s at 5 frames/s)")


if __name__ == "__main__":
    main()
