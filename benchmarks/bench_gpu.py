"""The model's frames/s and peak memory over resolutions and batch sizes, all in one process.

    python benchmarks/bench_gpu.py --device cuda --json results/model.json      # 720p and 1080p, batch 1-16
    python benchmarks/bench_gpu.py --device cpu --sizes 160x96 --batches 1 2     # a quick look on a CPU

``crowdwatch benchmark`` starts a fresh process per measurement, so that each peak resident memory is its
own; on a GPU the peak is read from the allocator (``torch.cuda.max_memory_allocated``, reset before each
measurement), so one process can sweep every (resolution, batch) pair and pay the cold start once. That
matters on a GPU machine lent for minutes. Two figures per pair, after warm-up, the median of
``--iters`` timed steps:

- network: the padded batch through the network alone (``Predictor.forward``, synchronised), the rate a
  GPU inference pool could serve at best;
- predict: ``Predictor.predict`` as the pipeline's worker calls it, frames in, points out
  (preprocessing and decoding included).

Frames are rendered by the demo's crowd renderer (people in them, so decoding has points to decode).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from crowdwatch.demo import render_frames
from crowdwatch.model.precision import machine_description
from crowdwatch.model.predictor import PRECISIONS, Predictor

DEFAULT_SIZES = ["1280x720", "1920x1080"]
DEFAULT_BATCHES = [1, 4, 8, 16]


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is WIDTHxHEIGHT (e.g. 1920x1080), not {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"a size must be at least 16x16, but got {text!r}")
    return width, height


def timed(step: Callable[[], object], device: torch.device, iters: int, warmup: int) -> float:
    """Median seconds of ``step`` over ``iters`` runs after ``warmup`` untimed ones."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(iters):
        started = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_mib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def measure(
    predictor: Predictor, size: tuple[int, int], batch: int, iters: int, warmup: int
) -> dict[str, Any]:
    width, height = size
    frames = render_frames(width, height, batch, 30, seed=batch)
    device = predictor.device
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    tensor, _ = predictor.preprocess(frames, device=device)
    network_s = timed(lambda: predictor.forward(tensor), device, iters, warmup)
    network_peak = peak_mib(device)
    predict_s = timed(lambda: predictor.predict(frames), device, iters, warmup)
    counts = [p.count for p in predictor.predict(frames)]
    return {
        "size": f"{width}x{height}",
        "batch": batch,
        "precision": predictor.precision,
        "network_fps": round(batch / network_s, 2),
        "predict_fps": round(batch / predict_s, 2),
        "network_ms_per_batch": round(1000 * network_s, 2),
        "peak_gpu_mib": network_peak,
        "peak_gpu_mib_predict": peak_mib(device),
        "mean_count": round(sum(counts) / len(counts), 1),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", help="cuda or cpu (default cuda)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="auto: fp16 on CUDA")
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[parse_size(s) for s in DEFAULT_SIZES])
    parser.add_argument("--batches", nargs="+", type=int, default=DEFAULT_BATCHES)
    parser.add_argument("--iters", type=int, default=10, help="timed steps per measurement (median kept)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (cuDNN picks kernels)")
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint (default: the packaged one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if any(b < 1 for b in args.batches) or args.iters < 1 or args.warmup < 0:
        parser.error("--batches and --iters must be at least 1, --warmup at least 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: --device cuda, but torch sees no CUDA GPU", file=sys.stderr)
        return 2
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True  # one shape per measurement: autotuning pays at once
    predictor = Predictor.from_checkpoint(args.weights, device=args.device, precision=args.precision)
    machine = machine_description(torch.device(args.device))
    print(f"{machine}, torch {torch.__version__}, {predictor.precision}", file=sys.stderr)
    rows = []
    for size in args.sizes:
        for batch in args.batches:
            try:
                row = measure(predictor, size, batch, args.iters, args.warmup)
            except torch.OutOfMemoryError:
                row = {"size": f"{size[0]}x{size[1]}", "batch": batch, "error": "out of GPU memory"}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    report = {"machine": machine, "torch": torch.__version__, "device": args.device, "rows": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
