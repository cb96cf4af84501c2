"""Boxes counting through one shared Triton pool vs each box running the network itself, on this machine.

    python benchmarks/bench_triton.py                          # 1, 2 and 4 boxes, 640x480, 20 s each
    python benchmarks/bench_triton.py --boxes 1 2 --size 1280x720 --seconds 30

For each number of boxes N, two runs side by side: ``local`` (N processes, each a Predictor on the
openvino backend with its share of the CPU threads, as N boxes would run it) and ``pool`` (N processes,
each a Predictor on the triton backend, against one ``crowdwatch serve --backend openvino`` started
here under ``.venv-serve``). Every box counts the same frame in a loop, one frame per request, for
``--seconds`` after a warm-up; all boxes start together. Prints the CPU (``lscpu``), then per run the
frames/s of all boxes together, the latency per frame (median and 95th percentile) and, for the pool,
how many requests Triton ran per execution (its own ``nv_inference_*`` counters). Both sides run the
same exported IR, so their counts are equal; the count is printed as a check.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.triton_pool import TritonPool, pool_missing

REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return f"{fields.get('Model name', '?').strip()}, {os.cpu_count()} CPUs"


def box(args: argparse.Namespace) -> None:
    """One box: count the frame in a loop from ``--start`` for ``--seconds``; print JSON."""
    import torch

    from crowdwatch.demo import render_frames
    from crowdwatch.model.predictor import Predictor
    from crowdwatch.model.triton import TritonTarget

    width, height = (int(v) for v in args.size.split("x"))
    frame = render_frames(width, height, 1, 40, seed=0)[0]
    if args.url:
        predictor = Predictor.from_checkpoint(
            None, backend="triton", triton=TritonTarget(args.url, timeout_s=120)
        )
    else:
        torch.set_num_threads(args.threads)
        predictor = Predictor.from_checkpoint(  # fp32, as the test pool serves it
            args.model, backend="openvino", precision="fp32"
        )
    count = predictor.predict([frame])[0].count  # warm-up: compile, connect
    while time.time() < args.start:
        time.sleep(0.01)
    latencies: list[float] = []
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        started = time.monotonic()
        count = predictor.predict([frame])[0].count
        latencies.append(time.monotonic() - started)
    print(json.dumps({"frames": len(latencies), "latencies": latencies, "count": count}))


def run_boxes(n: int, args: argparse.Namespace, model: Path, url: str | None) -> dict[str, float]:
    start = time.time() + 20.0 + 5.0 * n  # every box loaded and warmed up by then (loaded machine)
    threads = max(1, (os.cpu_count() or 1) // n)
    procs = []
    for _ in range(n):
        cmd = [sys.executable, __file__, "--box", "--size", args.size, "--seconds", str(args.seconds)]
        cmd += ["--start", str(start), "--threads", str(threads), "--model", str(model)]
        cmd += ["--url", url] if url else []
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO))
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"a box failed (exit {proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    latencies = np.array([x for r in results for x in r["latencies"]])
    return {
        "fps": sum(r["frames"] for r in results) / args.seconds,
        "p50_ms": float(np.percentile(latencies, 50) * 1000),
        "p95_ms": float(np.percentile(latencies, 95) * 1000),
        "count": float(results[0]["count"]),
    }


def row(boxes: object, where: str, fps: str, p50: str, p95: str, per_exec: str, count: str) -> str:
    return f"{boxes!s:>5} | {where:>5} | {fps:>8} | {p50:>7} | {p95:>7} | {per_exec:>13} | {count}"


def figures(r: dict[str, float]) -> tuple[str, str, str]:
    return f"{r['fps']:.2f}", f"{r['p50_ms']:.0f}", f"{r['p95_ms']:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--boxes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--size", default="640x480", help="frame WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--queue-delay-us", type=int, default=2000, help="the pool's batching window")
    parser.add_argument("--box", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.box:
        box(args)
        return 0
    reason = pool_missing()
    if reason:
        print(f"bench_triton: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-triton.") as tmp:
        subprocess.run(
            [sys.executable, "-m", "crowdwatch", "export", "--format", "openvino", "--out", tmp],
            check=True,
            capture_output=True,
        )
        model = Path(tmp) / "p2pnet.xml"
        print(f"# {cpu_model()}; frame {args.size} (synthetic, 40 people), {args.seconds:g} s per run")
        print(row("boxes", "where", "frames/s", "p50 ms", "p95 ms", "requests/exec", "count"))
        for n in args.boxes:
            local = run_boxes(n, args, model, None)
            print(row(n, "local", *figures(local), "-", f"{local['count']:.0f}"), flush=True)
            pool = TritonPool(
                model, Path(tmp), max_batch=8, queue_delay_us=args.queue_delay_us, threads=os.cpu_count() or 1
            ).start()
            try:
                before = pool.metrics()
                remote = run_boxes(n, args, model, pool.url)
                after = pool.metrics()
            finally:
                pool.stop(signal.SIGTERM)
            requests = after["nv_inference_request_success"] - before.get("nv_inference_request_success", 0)
            execs = after["nv_inference_exec_count"] - before.get("nv_inference_exec_count", 0)
            per_exec = f"{requests / max(execs, 1):.2f}"
            print(row(n, "pool", *figures(remote), per_exec, f"{remote['count']:.0f}"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
