"""``crowdwatch demo``: the pipeline on synthetic clips, for a machine with no camera.

It writes the clips that ``configs/demo.yaml`` plays (if they are not there yet, or with ``--remake``):
people walking at random, and a gate with a counting line. Then it runs that config like
``crowdwatch run`` for ``--duration`` seconds. ``--clip-only`` writes the clips and stops; ``--clip``
and ``--gate`` write them elsewhere (tests, benchmarks; ``--gate ''`` skips the gate clip); ``--truth``
also writes the gate clip's true tracks and crossings (CSV) beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crowdwatch.demo import DEFAULT_PATH, make_demo_clip
from crowdwatch.demo.gate import GATE_PATH, make_gate_clip
from crowdwatch.errors import UsageError

DEFAULT_CONFIG = Path("configs/demo.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch demo",
        description="Write the synthetic demo clips and run configs/demo.yaml on them (from the repository "
        "root): counts go to runs/demo/, the live view to http://127.0.0.1:9110/, metrics to "
        "http://127.0.0.1:9108/metrics.",
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help=f"the demo config (default {DEFAULT_CONFIG})"
    )
    parser.add_argument(
        "--duration", type=float, default=30.0, metavar="S", help="stop after S seconds (default 30)"
    )
    clip = parser.add_argument_group("the clips")
    clip.add_argument("--clip", type=Path, default=DEFAULT_PATH, help=f"the walkers (default {DEFAULT_PATH})")
    clip.add_argument(
        "--gate",
        default=str(GATE_PATH),
        help=f"the gate with a counting line (default {GATE_PATH}; '' = none)",
    )
    clip.add_argument("--truth", action="store_true", help="write the gate clip's true crossings (CSV)")
    clip.add_argument("--clip-only", action="store_true", help="write the clips and stop")
    clip.add_argument("--remake", action="store_true", help="write the clips even if they exist")
    clip.add_argument("--seconds", type=float, default=20.0, help="the walkers' length (default 20)")
    clip.add_argument("--size", default="640x360", help="the walkers' WIDTHxHEIGHT (default 640x360)")
    clip.add_argument("--fps", type=float, default=10.0, help="the clips' frame rate (default 10)")
    return parser


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 640x360, but got {text!r}") from None
    if width < 16 or height < 16:
        raise UsageError(f"--size must be at least 16x16, but got {text!r}")
    return width, height


def main(argv: list[str]) -> int:
    """Entry point of ``crowdwatch demo``; returns the exit code (the pipeline's, after a run)."""
    args = build_parser().parse_args(argv)
    width, height = _size(args.size)
    if args.seconds <= 0 or args.fps <= 0:
        raise UsageError("--seconds and --fps must be > 0")
    if not args.clip_only and not args.config.is_file():
        raise UsageError(
            f"{args.config} not found: run crowdwatch demo from the repository root, or pass --config"
        )
    remake = args.remake or args.clip_only
    if remake or not args.clip.is_file():
        path = make_demo_clip(args.clip, width=width, height=height, seconds=args.seconds, fps=args.fps)
        print(f"wrote {path}", flush=True)
    if args.gate and (remake or args.truth or not Path(args.gate).is_file()):
        gate = make_gate_clip(Path(args.gate), fps=args.fps, truth=args.truth)
        print(f"wrote {gate}", flush=True)
    if args.clip_only:
        return 0
    from crowdwatch.commands import run  # the pipeline's imports (OpenCV, the model) only when it runs

    return run.main([str(args.config), "--duration", str(args.duration)])
