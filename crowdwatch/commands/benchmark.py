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
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from crowdwatch.benchmarking import (
    PATHS,
    RESOLUTIONS,
    Job,
    Measurement,
    benchmark_frame,
    measure,
    measured_peak_flops,
    peak_dtype,
)
from crowdwatch.commands import help_text
from crowdwatch.commands.model_options import add_model_arguments, triton_target
from crowdwatch.errors import UsageError
from crowdwatch.model.precision import machine_description


def source_frame(image: Path | None) -> tuple[np.ndarray, str]:
    """The frame to count (``image``, or the packaged demo frame) and what it is, for the report (with
    how to count a frame of one's own when it is the demo frame)."""
    frame, what = benchmark_frame(image)
    if image is None:
        what += "; pass --image PATH to count a frame of your own cameras"
    return frame, what


def _job(args: argparse.Namespace) -> Job:
    """The one measurement a ``--worker`` process makes."""
    return Job(
        path=args.worker,
        resolution=args.resolution,
        iters=args.iters,
        batch=args.batch,
        precision=args.precision,
        threads=args.threads,
        device=args.device,
        backend=args.backend,
        weights=args.weights,
        openvino_model=args.openvino_model,
        int8_model=args.int8_model,
        image=args.image,
        triton=triton_target(args) if args.backend == "triton" else None,
    )


def _share(path: str, achieved: float, peak: float, cpu: bool, gpu_mib: float | None) -> str:
    """The table's last column after the GFLOP/s: the share of the CPU's floating-point peak, except
    for int8 (integer operations against a float peak would read as e.g. 172%); on a GPU its memory."""
    if not cpu:
        return f"; GPU MiB {gpu_mib:.0f}" if gpu_mib is not None else ""
    return "" if path == "int8" else f" ({100 * achieved / peak:.0f}%)"


def _mem(row: Measurement) -> str:
    return f"{row.peak_rss_mib:.0f} (+{row.peak_rss_mib - row.loaded_rss_mib:.0f})"


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
    parser.add_argument("--resolution", choices=list(RESOLUTIONS), help=argparse.SUPPRESS)
    return parser


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options (None: nothing), before anything is measured."""
    for option in ("iters", "rounds", "batch", "threads"):
        if getattr(args, option) < 1:
            return f"--{option} must be at least 1, but got {getattr(args, option)}"
    if args.worker and not args.resolution:
        return "--worker needs --resolution"
    if args.backend == "triton" and not args.url:
        return "--backend triton needs --url grpc://HOST:PORT"
    if args.backend == "triton":
        try:
            triton_target(args)
        except UsageError as exc:
            return str(exc)
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
    for option in ("weights", "openvino_model", "int8_model", "image", "tls_ca"):
        if getattr(args, option):
            cmd += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    return cmd


def _measure(args: argparse.Namespace, paths: list[str]) -> list[Measurement] | None:
    """Every path at every resolution, each in its own process, alternating for --rounds; None when a
    measurement failed (its error output printed)."""
    rows = []
    for res in args.resolutions:
        for path in paths * args.rounds:
            proc = subprocess.run(
                _worker_command(args, path, res), capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return None
            r = Measurement.from_dict(json.loads(proc.stdout.strip().splitlines()[-1]))
            rows.append(r)
            print(
                f"{res:>10} {path:>10} {r.precision:>5} {r.backend:>8} batch {r.batch}: "
                f"{r.fps:7.3f} frames/s, "
                f"peak RSS {r.peak_rss_mib:7.0f} MiB, count {r.count}",
                flush=True,
            )
    return rows


def _report(
    args: argparse.Namespace, rows: list[Measurement], paths: list[str], peak: float, peak_name: str
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
            path: max((r for r in rows if r.resolution == res and r.path == path), key=lambda r: r.fps)
            for path in paths
        }
        for path, b in best.items():
            achieved = b.flops_per_frame * b.fps
            print(
                f"{res:>10} | {path:>10} | {b.precision:>9} | {b.fps:8.3f} | "
                f"{b.fps / best['naive'].fps:7.2f}x | {b.fps / best['crowdwatch'].fps:12.2f}x | "
                f"{_mem(b):>14} | {b.count:>5} | {achieved / 1e9:.0f}"
                + ("" if b.backend == "triton" else _share(path, achieved, peak, cpu, b.peak_gpu_mib))
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
    if args.worker:  # one measurement, in a process of its own: its record on stdout for the parent
        print(json.dumps(measure(_job(args)).as_dict()))
        return 0
    torch.set_num_threads(args.threads)
    cpu = args.device == "cpu"
    peak_name = "bf16" if peak_dtype() == torch.bfloat16 else "fp32"
    peak = measured_peak_flops() if cpu else float("nan")  # the CPU's peak; not measured for a GPU
    where = machine_description(torch.device(args.device))
    print(f"# {where}, {args.threads} CPU threads, torch {torch.__version__}")
    print(f"# frame: {frame_note}")
    if cpu:
        print(f"# measured {peak_name} GEMM peak: {peak / 1e9:.0f} GFLOP/s")
    rows = _measure(args, paths)
    if rows is None:
        return 1
    if cpu:
        peak = max(peak, measured_peak_flops())  # again at the end; the less disturbed one counts
        print(f"# measured {peak_name} GEMM peak (best of start and end): {peak / 1e9:.0f} GFLOP/s")
    _report(args, rows, paths, peak, peak_name)
    if args.json:
        # No CPU peak on a GPU run: null, not NaN (which is not JSON).
        figures = {"bf16_peak_flops": peak if cpu else None, "rows": [row.as_dict() for row in rows]}
        args.json.write_text(json.dumps(figures, indent=1))
    return 0
