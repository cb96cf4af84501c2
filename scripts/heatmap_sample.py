#!/usr/bin/env python3
"""Make the docs' sample heatmap (docs/heatmap.jpg) from the synthetic demo clip, with the real parts.

    PYTHONPATH=$PWD python scripts/heatmap_sample.py [--out docs/heatmap.jpg] [--seconds 60]

Writes the demo clip (:func:`crowdwatch.demo.make_demo_clip`: synthetic, no research images) to a
temporary folder, decodes it with OpenCV, and feeds one frame per 0.5 s of clip time (2 frames/s, as
configs/demo.yaml samples it) through the packaged model (fp32 on the CPU), a camera's exclusion mask
(:class:`crowdwatch.zones.CameraZones`) and the heatmap sink (:class:`crowdwatch.sinks.heatmap.HeatmapSink`:
15-minute window, 16 px cells), exactly as ``crowdwatch run`` does, with capture times 0.5 s apart.
Prints the heads per frame, the grid's memory and the file's size.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.demo import make_demo_clip
from crowdwatch.frames import Result
from crowdwatch.model.predictor import Predictor
from crowdwatch.sinks.heatmap import HeatmapSink
from crowdwatch.zones import CameraZones

#: The sample's exclusion: a "poster" on the right edge of the 640x360 demo frame.
POSTER = np.array([[540, 40], [630, 40], [630, 200], [540, 200]], np.float32)
CAPTURE_T0 = 1_800_000_000.0  # any epoch: the heatmap uses differences only


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("docs/heatmap.jpg"))
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the demo clip")
    parser.add_argument("--sample-fps", type=float, default=2.0, help="frames per second fed to the model")
    args = parser.parse_args(argv)
    predictor = Predictor.from_checkpoint(None, device="cpu", precision="fp32")
    zones = CameraZones((), exclusions=[POSTER])
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_demo_clip(Path(tmp) / "demo.mp4", seconds=args.seconds)
        capture = cv2.VideoCapture(str(clip))
        clip_fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
        every = max(1, round(clip_fps / args.sample_fps))
        sink = HeatmapSink(
            Path(tmp) / "heatmaps",
            window_s=900,
            slot_s=60,
            cell_px=16,
            interval_s=1e9,
            exclusions={"demo": [POSTER]},
        )
        heads = []
        with sink:
            index = 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if index % every == 0:
                    t = CAPTURE_T0 + index / clip_fps
                    (prediction,) = predictor.predict([frame])
                    reading = zones.update(prediction.points, t)
                    points = prediction.points[reading.kept]
                    sink.write(Result("demo", index, t, frame, points, len(points), 0.0))
                    heads.append(len(points))
                    print(f"\rframe {index}: {len(points)} heads", end="", file=sys.stderr)
                index += 1
            capture.release()
            grid = sink.grid("demo")
            assert grid is not None
            print(file=sys.stderr)
            mean = np.mean(heads)
            print(f"{len(heads)} frames, {mean:.1f} heads per frame (min {min(heads)}, max {max(heads)})")
            print(f"grid {grid.cols}x{grid.rows} cells x {grid.slots} sub-grids: {grid.nbytes} bytes")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sink.image_path("demo"), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
