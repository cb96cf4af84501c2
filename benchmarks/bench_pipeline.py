"""Pipeline benchmark: N file cameras through the real readers, worker and sinks vs the bare model.

    python benchmarks/bench_pipeline.py                  # 4 cameras, 640x360, 10 min, RSS at 1 and 10 min
    python benchmarks/bench_pipeline.py --duration 120   # short run (RSS at 1 and 2 min)
    python benchmarks/bench_pipeline.py --backend openvino --weights models/p2pnet_int8.xml  # int8
    python benchmarks/bench_pipeline.py --device cuda --cameras 16 --camera-fps 25 --clip-fps 25 \
        --duration 40 --warmup 10 --bare 10 --json results/pipeline.json       # 16 cameras on a GPU

In one process, on the same frames and precision:
1. bare model: ``predictor.predict`` on one frame of each camera, as one batch, for ``--bare`` s;
2. pipeline: the real CameraReader (file, looped), Worker (dynamic batching), CSV + overlay sinks and
   the metrics events, for ``--duration`` s; frames/s counted after ``--warmup`` s;
3. bare model again (the CPU is shared: the mean of before and after is the reference).
Prints pipeline frames/s as a fraction of bare frames/s, end-to-end latency p50/p95 (capture ->
published) and resident memory (VmRSS) at 1 min and at the end of the pipeline phase, as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from prometheus_client import CollectorRegistry

from crowdwatch.capture.reader import CameraReader, stop_readers
from crowdwatch.config import CameraConfig
from crowdwatch.demo import make_demo_clip
from crowdwatch.frames import Result
from crowdwatch.inference.worker import Worker
from crowdwatch.model.predictor import BACKENDS, PRECISIONS, Predictor
from crowdwatch.secrets import SecretUrl
from crowdwatch.sinks.base import Sink, SinkBase
from crowdwatch.sinks.csv import CsvSink
from crowdwatch.sinks.overlay import OverlaySink
from crowdwatch.sinks.runner import SinkRunner
from crowdwatch.telemetry.metrics import PipelineMetrics

logger = logging.getLogger("bench_pipeline")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class LatencyRecorder(SinkBase):
    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (published monotonic, latency)

    def write(self, result: Result) -> None:
        self.samples.append((time.monotonic(), result.latency_s))


def bare_fps(predictor: Predictor, frames: list[np.ndarray], seconds: float) -> float:
    predictor.predict(frames)  # warm
    done, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        predictor.predict(frames)
        done += len(frames)
    return done / (time.monotonic() - started)


def first_frame(path: Path) -> np.ndarray:
    import cv2

    capture = cv2.VideoCapture(str(path))
    ok, image = capture.read()
    capture.release()
    if not ok:
        raise SystemExit(f"cannot decode {path}")
    return image


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--duration", type=float, default=600.0, help="pipeline phase, seconds")
    parser.add_argument("--warmup", type=float, default=15.0, help="pipeline seconds not counted in frames/s")
    parser.add_argument(
        "--bare", type=float, default=30.0, help="bare-model phase before and after, seconds each"
    )
    parser.add_argument("--camera-fps", type=float, default=2.0, help="frames/s asked of each camera")
    parser.add_argument("--clip-fps", type=float, default=10.0, help="frame rate of the clips (decode load)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    parser.add_argument(
        "--weights", type=Path, default=None, help="checkpoint, or the exported model for --backend openvino"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (torch backend)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report to this file")
    parser.add_argument("--max-batch", type=int, default=None, help="default: --cameras")
    parser.add_argument("--workdir", type=Path, default=None, help="clips and outputs (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    width, height = (int(v) for v in args.size.split("x"))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_pipeline."))

    clips = [
        make_demo_clip(
            workdir / f"cam{i}.mp4",
            width=width,
            height=height,
            seconds=10,
            fps=args.clip_fps,
            people=30,
            seed=i,
        )
        for i in range(args.cameras)
    ]
    frames = [first_frame(clip) for clip in clips]
    predictor = Predictor.from_checkpoint(
        args.weights, backend=args.backend, device=args.device, precision=args.precision
    )
    bare_before = bare_fps(predictor, frames, args.bare)
    print(f"bare model before: {bare_before:.2f} frames/s", file=sys.stderr, flush=True)
    if args.camera_fps * args.cameras < 1.5 * bare_before:
        print(
            f"warning: the cameras offer {args.camera_fps * args.cameras:g} frames/s, not clearly more "
            "than the model can take: raise --camera-fps, or the fraction measures the cameras",
            file=sys.stderr,
        )

    cameras = [
        CameraConfig(id=f"cam{i}", url=SecretUrl(str(clip)), fps=args.camera_fps, loop=True)
        for i, clip in enumerate(clips)
    ]
    metrics = PipelineMetrics(CollectorRegistry(), [c.id for c in cameras])
    recorder = LatencyRecorder()
    sinks: list[Sink] = [
        CsvSink(workdir / "out"),
        OverlaySink(workdir / "out" / "snapshots", interval_s=5.0),
        recorder,
    ]
    for sink in sinks:
        sink.open()
    wake = threading.Event()
    readers = [CameraReader(camera, metrics, on_frame=wake) for camera in cameras]
    runner = SinkRunner(sinks)
    worker = Worker(
        predictor,
        readers,
        publish=runner.submit,
        events=metrics,
        max_batch=args.max_batch or args.cameras,
        wake=wake,
    )
    runner.start()
    worker.start()
    for reader in readers:
        reader.start()
    started = time.monotonic()
    rss = {}
    for mark in sorted({m for m in (60.0, args.duration) if m <= args.duration}):
        time.sleep(max(0.0, started + mark - time.monotonic()))
        rss[f"{mark / 60:g} min"] = round(rss_mib(), 1)
    stop_readers(readers, timeout=5)
    worker.stop(timeout=30)
    runner.stop(time.monotonic() + 30)
    for sink in sinks:
        sink.close()
    window = [(t, lat) for t, lat in recorder.samples if t - started >= args.warmup]
    span = (window[-1][0] - window[0][0]) if len(window) > 1 else float("nan")
    pipeline_fps = (len(window) - 1) / span if len(window) > 1 else 0.0

    bare_after = bare_fps(predictor, frames, args.bare)
    bare = (bare_before + bare_after) / 2
    latencies = np.array([lat for _, lat in window])
    report = {
        "cameras": args.cameras,
        "size": args.size,
        "backend": predictor.backend.name,
        "device": str(predictor.device),
        "weights": str(args.weights) if args.weights else "default",
        "precision": predictor.precision,
        "torch_threads": torch.get_num_threads(),
        "duration_s": args.duration,
        "camera_fps": args.camera_fps,
        "clip_fps": args.clip_fps,
        "bare_fps_before": round(bare_before, 3),
        "bare_fps_after": round(bare_after, 3),
        "pipeline_fps": round(pipeline_fps, 3),
        "fraction_of_bare": round(pipeline_fps / bare, 3),
        "latency_p50_s": round(float(np.percentile(latencies, 50)), 3) if latencies.size else None,
        "latency_p95_s": round(float(np.percentile(latencies, 95)), 3) if latencies.size else None,
        "frames_processed": len(recorder.samples),
        "rss_mib": rss,
        "rss_growth": round(rss[f"{args.duration / 60:g} min"] / rss["1 min"] - 1, 4)
        if len(rss) == 2
        else None,
        "batches": worker.batches,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
