"""Pixel bomb: time and peak memory of ``crowdwatch count`` on a 20000x20000 PNG, next to a small image.

    python benchmarks/bench_pixel_bomb.py                    # 20000x20000 (400 MP) vs 640x480
    python benchmarks/bench_pixel_bomb.py --size 30000 30000

Writes a constant grayscale PNG of the given size into a temporary folder (it compresses to a few
hundred kB; it never exists decoded here), runs ``python -m crowdwatch count`` on it and on a 640x480
image under ``/usr/bin/time -v``, and prints as JSON each run's exit code, wall time, peak resident
memory and the error line. Without the header check the bomb is decoded (1.2 GB) and handed to the
model; with it, the run costs what counting a small image costs (torch and the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.png_files import write_constant_png

TIME = "/usr/bin/time"


def measure(image: Path) -> dict[str, object]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [TIME, "-v", sys.executable, "-m", "crowdwatch", "count", str(image)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=600)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    wall = re.search(
        r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", proc.stderr
    )
    seconds = None
    if wall:
        hours, minutes, secs = wall.groups()
        seconds = round(int(hours or 0) * 3600 + int(minutes) * 60 + float(secs), 2)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("crowdwatch:")]
    return {
        "exit_code": proc.returncode,  # GNU time exits with the command's status
        "wall_s": seconds,
        "peak_rss_mb": round(int(rss.group(1)) / 1024, 1) if rss else None,
        "stdout": proc.stdout.strip(),
        "error": errors[0] if errors else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, nargs=2, default=(20000, 20000), metavar=("W", "H"))
    args = parser.parse_args()
    if not os.access(TIME, os.X_OK):
        print(f"{TIME} (GNU time) is needed: apt-get install time", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        width, height = args.size
        bomb = write_constant_png(Path(tmp) / "bomb.png", width, height, value=90)
        small = write_constant_png(Path(tmp) / "small.png", 640, 480, value=90)
        report = {
            "bomb": {"size": f"{width}x{height}", "file_bytes": bomb.stat().st_size, **measure(bomb)},
            "small": {"size": "640x480", "file_bytes": small.stat().st_size, **measure(small)},
        }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
