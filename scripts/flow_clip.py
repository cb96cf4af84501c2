"""Count a line's crossings on a video clip, every frame through the packaged model, and write the
overlay (line, totals, track tails, head points) of each frame that has a crossing, for checking by eye.

    PYTHONPATH=$PWD python scripts/flow_clip.py CLIP --line 380,300,640,300 [--frames 150]
        [--fps 10] [--max-speed 300] [--out runs/flow_clip]

Time is the clip's own (frame i at i / --fps seconds); ``--max-speed`` is in px per second of it. The
model's points are cached in ``--out`` (rerun with other tracking settings at no model cost). Prints
the totals each way and one line per crossing (frame, direction, track, where); writes
``crossing-<frame>.png`` per frame with crossings and ``last.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.drawing import draw_lines, draw_points, draw_tails
from crowdwatch.flow import CameraFlow
from crowdwatch.lines import CountingLine
from crowdwatch.tracking import TrackerSettings


def frames(clip: Path, n: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(clip))
    out: list[np.ndarray] = []
    while len(out) < n:
        ok, frame = capture.read()
        if not ok:
            break
        out.append(frame)
    capture.release()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("clip", type=Path)
    parser.add_argument("--line", required=True, help="x1,y1,x2,y2 (in = from the left of 1 -> 2)")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--max-speed", type=float, default=300.0)
    parser.add_argument("--max-missed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/flow_clip"))
    args = parser.parse_args()
    x1, y1, x2, y2 = (float(v) for v in args.line.split(","))
    line = CountingLine("walkway", (x1, y1), (x2, y2), "in", "out")
    images = frames(args.clip, args.frames)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / f"{args.clip.stem}-{len(images)}.npz"
    if cache.exists():
        data = np.load(cache)
        points = [data[f"f{i}"] for i in range(len(images))]
    else:
        from crowdwatch.model import Predictor

        predictor = Predictor.from_checkpoint("default")
        points = []
        for i, image in enumerate(images):
            points.append(np.asarray(predictor.predict([image])[0].points, np.float64))
            if i % 10 == 0:
                print(f"model: frame {i}/{len(images)}", flush=True)
        np.savez_compressed(cache, **{f"f{i}": p for i, p in enumerate(points)})
    flow = CameraFlow(
        [line], tracker=TrackerSettings(max_speed_px_s=args.max_speed, max_missed=args.max_missed)
    )
    spec = [(line.id, line.a, line.b, line.in_name, line.out_name)]
    for i, (image, pts) in enumerate(zip(images, points, strict=True)):
        reading = flow.update(pts, i / args.fps)
        if reading.crossings or i == len(images) - 1:
            drawn = draw_points(image, pts, count=len(pts))
            draw_tails(drawn, reading.tails)
            draw_lines(drawn, spec, reading.totals)
            for c in reading.crossings:
                cv2.circle(drawn, (round(c.point[0]), round(c.point[1])), 12, (0, 255, 0), 2)
                print(f"frame {i}: {c.direction} track {c.track} at ({c.point[0]:.0f}, {c.point[1]:.0f})")
            name = "last.png" if not reading.crossings else f"crossing-{i:04d}.png"
            cv2.imwrite(str(args.out / name), drawn)
    n_in, n_out = reading.totals[line.id]
    print(f"{len(images)} frames: in {n_in}, out {n_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
