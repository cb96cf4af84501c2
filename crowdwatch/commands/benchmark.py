"""``crowdwatch benchmark``: frames/s and peak memory of the model, naive path vs crowdwatch's path.

Each (path, resolution) runs in a fresh subprocess, so that its peak resident memory is its own.

- naive: how the published inference script runs the model: fp32, NCHW, one frame at a time,
  autograd left on (no ``inference_mode``/``no_grad``).
- crowdwatch: the Predictor as the pipeline uses it: ``precision=auto`` (bf16 autocast on CPUs with
  native bf16), channels_last, ``inference_mode``, batches of ``--batch`` frames (default 1); with
  ``--backend openvino``, the Predictor on the exported model that ``--weights`` names.
- openvino, int8 (with ``--openvino-model`` / ``--int8-model``, side by side with the others): the
  Predictor on an exported fp32 IR (the runtime's default precision) and on an int8 IR.

    crowdwatch export --format openvino --int8 --calibration FRAMES/ --out models/
    crowdwatch benchmark --openvino-model models/p2pnet.xml --int8-model models/p2pnet_int8.xml

Every path counts the same frame, scaled to each resolution: --image PATH (a frame of your cameras), or
else the packaged synthetic demo frame. The last column is the convolutions' GFLOP/s and, on a CPU,
their share of the measured floating-point peak; an int8 model runs integer instructions, so it gets
no share (its GFLOP/s can exceed the floating-point peak).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crowdwatch.commands import help_text
from crowdwatch.commands.model_options import add_model_arguments, predictor_from_args
from crowdwatch.demo import render_frames
from crowdwatch.images import read_image
from crowdwatch.model import P2PNet, Predictor, decode
from crowdwatch.model.checkpoint import CheckpointMeta, load_checkpoint, packaged_weights
from crowdwatch.model.precision import cpu_has_native_bf16, machine_description
from crowdwatch.model.preprocess import Preprocessor, padded_size
from crowdwatch.weightsfile import EXPORTED_SUFFIXES, PACKAGED_WEIGHTS, resolve_weights

#: The packaged demo frame: the synthetic demo clip's first frame (640x480, this many people drawn).
DEMO_SIZE, DEMO_PEOPLE, DEMO_SEED = (640, 480), 40, 0
PATHS = ("naive", "crowdwatch", "openvino", "int8")
RESOLUTIONS = {"640x360": (360, 640), "1280x720": (720, 1280), "1920x1080": (1080, 1920)}


def conv_flops(net: torch.nn.Module, height: int, width: int) -> float:
    """Multiply-adds x 2 of every convolution for one (height, width) input, padded as the model pads it.

    Counted on a 64x64 input and scaled by the area: with sides multiples of 16, every feature map's
    area is the input's divided by a fixed power of 4, so the scaling is exact (and costs no full run).
    """
    flops = 0.0
    padded_h, padded_w = padded_size(height, width)

    def hook(module: torch.nn.Conv2d, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal flops
        k = module.kernel_size[0] * module.kernel_size[1]
        flops += 2.0 * module.in_channels * module.out_channels * k * output.shape[-2] * output.shape[-1]

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        net(torch.zeros(1, 3, 64, 64))
    for handle in handles:
        handle.remove()
    return flops * (padded_h * padded_w) / (64 * 64)


def peak_dtype() -> torch.dtype:
    """bf16 where the CPU has it natively; elsewhere fp32 (emulated bf16 is slow and no peak at all)."""
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def measured_bf16_peak(trials: int = 5, seconds: float = 1.0) -> float:
    """FLOP/s of a large matrix product on this CPU in :func:`peak_dtype`, best of several trials (what
    oneDNN reaches at best; the best trial is the one least disturbed by other load)."""
    size = 2048
    a = torch.randn(size, size, dtype=peak_dtype())
    b = torch.randn(size, size, dtype=peak_dtype())
    torch.mm(a, b)
    best = 0.0
    for _ in range(trials):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            torch.mm(a, b)
            n += 1
        best = max(best, n * 2 * size**3 / (time.perf_counter() - start))
    return best


def current_rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def source_frame(image: Path | None) -> tuple[np.ndarray, str]:
    """The frame to count (``image``, or the packaged demo frame) and what it is, for the report."""
    if image is not None:
        return read_image(image), str(image)
    width, height = DEMO_SIZE
    frame = render_frames(width, height, 1, DEMO_PEOPLE, seed=DEMO_SEED)[0]
    note = (
        f"the packaged synthetic demo frame ({DEMO_PEOPLE} people drawn, {width}x{height}); "
        "pass --image PATH to count a frame of your own cameras"
    )
    return frame, note


def test_frame(height: int, width: int, image: Path | None = None) -> np.ndarray:
    """:func:`source_frame` scaled to ``width`` x ``height``."""
    import cv2

    frame, _ = source_frame(image)
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)


def _load(weights: str | Path | None) -> tuple[P2PNet, CheckpointMeta]:
    if weights and Path(weights).suffix.lower() in EXPORTED_SUFFIXES:
        weights = None  # an exported model runs on the other paths; the naive one runs the checkpoint
    path = resolve_weights(weights) or packaged_weights()
    if path:
        return load_checkpoint(path)
    torch.manual_seed(0)
    net = P2PNet().eval()
    with torch.no_grad():  # spread the logits so counts are not decided by rounding noise
        net.classification.output.weight.mul_(20.0)
    return net, CheckpointMeta(num_candidates=4)


def _worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    height, width = RESOLUTIONS[args.resolution]
    frame = test_frame(height, width, args.image)
    net, meta = _load(args.weights)
    counts: list[int] = []
    device = torch.device(args.device)
    if args.path == "naive":
        net = net.float().eval().to(device)
        pre = Preprocessor(mean=meta.mean, std=meta.std)

        def step() -> None:
            batch, geos = pre([frame])  # one frame at a time, NCHW float32, autograd on
            out = net(batch.to(device))
            counts.append(
                decode(out["logits"].detach(), out["points"].detach(), geos, meta.default_threshold)[0].count
            )

        frames_per_step = 1
        precision = "fp32"
    else:
        if args.path == "crowdwatch" and args.backend == "torch":
            predictor = Predictor(net, meta, device=args.device, precision=args.precision)
        elif args.path == "crowdwatch" and args.backend == "triton":
            predictor = predictor_from_args(args)
        else:
            weights = str(resolve_weights(args.weights) or PACKAGED_WEIGHTS)  # a .pt runs on OpenVINO too
            model = {"crowdwatch": weights, "openvino": args.openvino_model, "int8": args.int8_model}
            predictor = Predictor.from_checkpoint(
                model[args.path], backend="openvino", precision=args.precision
            )
        frames = [frame] * args.batch

        def step() -> None:
            counts.append(predictor.predict(frames)[0].count)

        frames_per_step = args.batch
        precision = predictor.precision
    baseline_rss = current_rss_mib()  # torch, OpenCV and the loaded weights
    step()  # warm-up: kernel selection, allocator growth
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        step()  # decoding reads the results back, so the GPU has finished when step() returns
        times.append(time.perf_counter() - start)
    per_step = float(np.median(times))
    result = {
        "path": args.path,
        "resolution": args.resolution,
        "precision": precision,
        "backend": "torch" if args.path == "naive" else predictor.backend.name,
        "batch": frames_per_step,
        "fps": frames_per_step / per_step,
        "seconds_per_frame": per_step / frames_per_step,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loaded_rss_mib": baseline_rss,
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
        "count": counts[-1],
        "flops_per_frame": conv_flops(net.float().cpu(), height, width),
    }
    print(json.dumps(result))


def _share(path: str, achieved: float, peak: float, cpu: bool, gpu_mib: float | None) -> str:
    """The table's last column after the GFLOP/s: the share of the CPU's floating-point peak, except
    for int8 (integer operations against a float peak would read as e.g. 172%); on a GPU its memory."""
    if not cpu:
        return f"; GPU MiB {gpu_mib:.0f}" if gpu_mib is not None else ""
    return "" if path == "int8" else f" ({100 * achieved / peak:.0f}%)"


def _mem(row: dict[str, Any]) -> str:
    return f"{row['peak_rss_mib']:.0f} (+{row['peak_rss_mib'] - row['loaded_rss_mib']:.0f})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch benchmark",
        description=help_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--resolutions", nargs="+", default=list(RESOLUTIONS), choices=list(RESOLUTIONS))
    parser.add_argument("--iters", type=int, default=3, help="timed steps per measurement (median kept)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="naive and crowdwatch alternate this many times per resolution; each path's "
        "best round is kept (other load on a shared machine only ever slows a round)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="frames per batch on crowdwatch's path (1: on this CPU the convolutions already "
        "run near the bf16 peak at batch 1, and larger batches only add memory)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--image",
        type=Path,
        default=None,
        help="the frame to count, scaled to each resolution (default: the packaged synthetic demo frame)",
    )
    # --device cuda: both paths run on the GPU (auto precision = fp16 + channels_last); --backend is the
    # crowdwatch path's (openvino: --weights names the exported model; triton: the pool at --url).
    add_model_arguments(parser, devices=("cpu", "cuda"), threshold=False, geometry=False)
    parser.add_argument("--openvino-model", help="also time this exported fp32 model (openvino row)")
    parser.add_argument("--int8-model", help="also time this exported int8 model (int8 row)")
    parser.add_argument("--json", type=Path, default=None, help="also write all figures to this file")
    parser.add_argument("--worker", choices=list(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--resolution", help=argparse.SUPPRESS)
    return parser


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options (None: nothing), before anything is measured."""
    if args.backend == "triton" and not args.url:
        return "--backend triton needs --url grpc://HOST:PORT"
    for option in ("openvino_model", "int8_model"):
        value = getattr(args, option)
        if value and not Path(value).is_file():
            return f"--{option.replace('_', '-')} {value}: no such file"
    try:
        source_frame(args.image)
    except OSError as exc:
        return f"--image {args.image}: {exc}"
    if args.device == "cuda" and not args.worker and not torch.cuda.is_available():
        return "--device cuda, but torch sees no CUDA GPU"
    return None


def _worker_command(args: argparse.Namespace, path: str, resolution: str) -> list[str]:
    """The command line of one measurement in its own process (its peak memory is its own)."""
    cmd = [sys.executable, "-m", "crowdwatch", "benchmark", "--worker", path, "--resolution", resolution]
    for option in ("iters", "batch", "precision", "threads", "device", "backend"):
        cmd += [f"--{option}", str(getattr(args, option))]
    if args.backend == "triton":
        cmd += ["--url", args.url, "--model-name", args.model_name, "--timeout", str(args.timeout)]
    for option in ("weights", "openvino_model", "int8_model", "image"):
        if getattr(args, option):
            cmd += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    return cmd


def _measure(args: argparse.Namespace, paths: list[str]) -> list[dict[str, Any]] | None:
    """Every path at every resolution, alternating for --rounds; None when a measurement failed."""
    rows = []
    for res in args.resolutions:
        for path in paths * args.rounds:
            proc = subprocess.run(
                _worker_command(args, path, res), capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return None
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(
                f"{res:>10} {path:>10} {r['precision']:>5} {r['backend']:>8} batch {r['batch']}: "
                f"{r['fps']:7.3f} frames/s, "
                f"peak RSS {r['peak_rss_mib']:7.0f} MiB, count {r['count']}",
                flush=True,
            )
    return rows


def _report(
    args: argparse.Namespace, rows: list[dict[str, Any]], paths: list[str], peak: float, peak_name: str
) -> None:
    """The table: each path's best round per resolution, against naive and crowdwatch."""
    cpu = args.device == "cpu"
    print()
    print(
        "MiB = peak RSS of the process; in brackets the part above the loaded model (torch alone "
        "takes ~540 MiB)" + ("" if cpu else "; GPU MiB = torch's peak allocated GPU memory")
    )
    print(
        f"{'resolution':>10} | {'path':>10} | {'precision':>9} | {'frames/s':>8} | {'vs naive':>8} | "
        f"{'vs crowdwatch':>13} | {'peak MiB':>14} | {'count':>5} | GFLOP/s (% of {peak_name} peak)"
    )
    for res in args.resolutions:
        best = {
            path: max(
                (r for r in rows if r["resolution"] == res and r["path"] == path), key=lambda r: r["fps"]
            )
            for path in paths
        }
        for path, b in best.items():
            achieved = b["flops_per_frame"] * b["fps"]
            print(
                f"{res:>10} | {path:>10} | {b['precision']:>9} | {b['fps']:8.3f} | "
                f"{b['fps'] / best['naive']['fps']:7.2f}x | {b['fps'] / best['crowdwatch']['fps']:12.2f}x | "
                f"{_mem(b):>14} | {b['count']:>5} | {achieved / 1e9:.0f}"
                + ("" if b["backend"] == "triton" else _share(path, achieved, peak, cpu, b["peak_gpu_mib"]))
            )
    if args.backend == "triton":
        print("(triton: the network runs in the pool, so this CPU's peak is no measure of it)")
    if cpu and "int8" in paths:
        print(f"(int8 runs integer instructions: no share of the {peak_name} peak is given for it)")


def main(argv: list[str]) -> int:
    """Entry point of ``crowdwatch benchmark``; returns the exit code."""
    args = build_parser().parse_args(argv)
    problem = _usage_problem(args)
    if problem is not None:
        print(f"crowdwatch benchmark: {problem}", file=sys.stderr)
        return 2
    paths = [p for p in PATHS if p in ("naive", "crowdwatch") or getattr(args, f"{p}_model")]
    _, frame_note = source_frame(args.image)
    if args.worker:
        args.path = args.worker
        _worker(args)
        return 0
    torch.set_num_threads(args.threads)
    cpu = args.device == "cpu"
    peak_name = "bf16" if peak_dtype() == torch.bfloat16 else "fp32"
    peak = measured_bf16_peak() if cpu else float("nan")  # the CPU's peak; not measured for a GPU
    where = machine_description(torch.device(args.device))
    print(f"# {where}, {args.threads} CPU threads, torch {torch.__version__}")
    print(f"# frame: {frame_note}")
    if cpu:
        print(f"# measured {peak_name} GEMM peak: {peak / 1e9:.0f} GFLOP/s")
    rows = _measure(args, paths)
    if rows is None:
        return 1
    if cpu:
        peak = max(peak, measured_bf16_peak())  # again at the end; the less disturbed one counts
        print(f"# measured {peak_name} GEMM peak (best of start and end): {peak / 1e9:.0f} GFLOP/s")
    _report(args, rows, paths, peak, peak_name)
    if args.json:
        # No CPU peak on a GPU run: null, not NaN (which is not JSON).
        args.json.write_text(json.dumps({"bf16_peak_flops": peak if cpu else None, "rows": rows}, indent=1))
    return 0
