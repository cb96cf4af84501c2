"""Time from SIGTERM to exit of `crowdwatch run` on a 4K camera, with CPU hogs running.

    python benchmarks/bench_stop.py --clip /path/to/clip.mp4                 # 20 trials, 4 hogs
    python benchmarks/bench_stop.py --clip CLIP --trials 5 --hogs 0 --after 3

Makes an 8 s H.264 copy of ``--clip`` at ``--size`` (3840x2160 by default; Debian ffmpeg), then per
trial starts ``python -m crowdwatch run`` on a config with ``model: {threads: 1}`` and one looping file
camera at 1 frame/s, waits for "camera up", waits ``--after`` s more (at 4K the model is then inside a
frame, which takes far longer than the stop budget), sends SIGTERM and records the exit code, the
seconds until "stopped cleanly" appeared in the log and the seconds until the process ended. ``--hogs``
busy loops (``yes > /dev/null``) run during all trials; every process started here is stopped by its PID
(the pipeline by the tests' ``running_pipeline``).
Prints one JSON line per trial and a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.pipeline_harness import running_pipeline


def make_clip(clip: Path, out: Path, seconds: float, size: str) -> Path:
    width, height = size.split("x")
    cmd = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(clip), "-t", str(seconds),
        "-vf", f"scale={width}:{height}", "-c:v", "libx264", "-preset", "ultrafast", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=600)
    return out


def write_config(folder: Path, video: Path) -> Path:
    config = {
        "model": {"threads": 1},
        "cameras": [{"id": "big", "url": str(video), "loop": True, "fps": 1}],
        "output": {"dir": str(folder / "out"), "snapshots": {"enabled": False}},
        "metrics": {"port": 0},
    }
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def trial(config: Path, log_dir: Path, after_s: float) -> dict[str, object]:
    log_dir.mkdir()
    with running_pipeline(config, log_dir, ready_timeout=300, omp_threads=None) as pipeline:
        pipeline.wait_for_log("camera up", 300)
        time.sleep(after_s)
        sent = time.monotonic()
        pipeline.send(signal.SIGTERM)
        stopped_s = None
        while pipeline.poll() is None and time.monotonic() - sent < 120:
            if stopped_s is None and "stopped cleanly" in pipeline.logs():
                stopped_s = time.monotonic() - sent
            time.sleep(0.02)
        exit_s = time.monotonic() - sent
        if stopped_s is None and "stopped cleanly" in pipeline.logs():
            stopped_s = exit_s
        rc: int | None = pipeline.poll()
        return {"rc": rc, "stopped_cleanly_s": stopped_s, "exit_s": round(exit_s, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, required=True, help="any video; an 8 s copy is made at --size")
    parser.add_argument("--size", default="3840x2160", help="frame size of the copy (WxH)")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--hogs", type=int, default=4, help="busy loops (yes > /dev/null) during the trials")
    parser.add_argument("--after", type=float, default=3.0, help="seconds after 'camera up' to send SIGTERM")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_config(folder, make_clip(args.clip, folder / "camera.mp4", 8, args.size))
        hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(args.hogs)]
        try:
            for n in range(args.trials):
                result = {"trial": n, **trial(config, folder / f"trial{n}", args.after)}
                print(json.dumps(result), flush=True)
                results.append(result)
        finally:
            for hog in hogs:
                os.kill(hog.pid, signal.SIGKILL)
                hog.wait()
    exits = [float(str(r["exit_s"])) for r in results]
    summary = {
        "trials": len(results),
        "hogs": args.hogs,
        "size": args.size,
        "exit_codes": {str(rc): sum(r["rc"] == rc for r in results) for rc in {r["rc"] for r in results}},
        "exit_s": {"min": min(exits), "median": statistics.median(exits), "max": max(exits)},
    }
    print(json.dumps(summary))
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
