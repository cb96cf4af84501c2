"""``python -m crowdwatch.demo [PATH]``: write the synthetic clip that ``configs/demo.yaml`` plays.

Not a ``crowdwatch`` subcommand: the bootstrap script's ``demo`` mode runs it before the pipeline.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crowdwatch.demo import DEFAULT_PATH, make_demo_clip


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
    return 0
