"""``python -m crowdwatch.demo [PATH]``: write the synthetic clip that ``configs/demo.yaml`` plays.

Not a ``crowdwatch`` subcommand: the bootstrap script's ``demo`` mode runs it before the pipeline.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crowdwatch.demo import DEFAULT_PATH, make_demo_clip
from crowdwatch.demo.gate import GATE_PATH, make_gate_clip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m crowdwatch.demo",
        description="Write the synthetic demo clip that configs/demo.yaml plays.",
    )
    parser.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_PATH, help=f"output file (default {DEFAULT_PATH})"
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT (default 640x360)")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument(
        "--gate",
        default=str(GATE_PATH),
        help=f"also write the gate clip for the demo's counting line here (default {GATE_PATH}; '' = no)",
    )
    parser.add_argument(
        "--truth", action="store_true", help="write the gate clip's true crossings and tracks beside it (CSV)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size must look like 640x360, but got {args.size!r}")
    path = make_demo_clip(args.path, width=width, height=height, seconds=args.seconds, fps=args.fps)
    print(f"wrote {path}")
    if args.gate:
        gate = make_gate_clip(Path(args.gate), fps=args.fps, truth=args.truth)
        print(f"wrote {gate}")
    return 0
