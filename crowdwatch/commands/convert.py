"""``crowdwatch convert PUBLISHED.pth OUT.pt``: import a checkpoint of the published P2PNet code."""

from __future__ import annotations

import argparse
from pathlib import Path

from crowdwatch.model.published import convert_checkpoint


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch convert",
        description="Import a checkpoint of the published P2PNet code (vgg16_bn or vgg16 backbone) "
        "into crowdwatch's format, exactly (BatchNorm folded, 2-class head turned into one logit).",
    )
    parser.add_argument("published", type=Path, metavar="PUBLISHED.pth")
    parser.add_argument("out", type=Path, metavar="OUT.pt")
    parser.add_argument("--anchor-rows", type=int, default=2, help="published --row (default 2)")
    parser.add_argument("--anchor-cols", type=int, default=2, help="published --line (default 2)")
    parser.add_argument("--threshold", type=float, default=0.5, help="default threshold stored (0.5)")
    parser.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")
    return parser


def main(argv: list[str]) -> int:
    """Entry point of ``crowdwatch convert``; returns the exit code."""
    args = build_parser().parse_args(argv)
    convert_checkpoint(
        args.published,
        args.out,
        anchor_rows=args.anchor_rows,
        anchor_cols=args.anchor_cols,
        threshold=args.threshold,
        half=args.half,
    )
    print(f"wrote {args.out}")
    return 0
