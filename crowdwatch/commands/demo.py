"""``crowdwatch demo``: the pipeline on a synthetic clip, for a machine with no camera.

It writes the clip that ``configs/demo.yaml`` plays (if it is not there yet, or with ``--remake``) and
then runs that config like ``crowdwatch run`` for ``--duration`` seconds. ``--clip-only`` writes the
clip and stops; ``--clip PATH`` writes it elsewhere (tests, benchmarks).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crowdwatch.demo import DEFAULT_PATH, make_demo_clip
from crowdwatch.errors import UsageError

DEFAULT_CONFIG = Path("configs/demo.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch demo",
        description="Write the synthetic demo clip and run configs/demo.yaml on it (from the repository "
        "root): counts go to runs/demo/, metrics to http://127.0.0.1:9108/metrics.",
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help=f"the demo config (default {DEFAULT_CONFIG})"
    )
    parser.add_argument(
        "--duration", type=float, default=30.0, metavar="S", help="stop after S seconds (default 30)"
    )
    clip = parser.add_argument_group("the clip")
    clip.add_argument(
        "--clip", type=Path, default=DEFAULT_PATH, help=f"where it goes (default {DEFAULT_PATH})"
    )
    clip.add_argument("--clip-only", action="store_true", help="write the clip and stop")
    clip.add_argument("--remake", action="store_true", help="write the clip even if it exists")
    clip.add_argument("--seconds", type=float, default=20.0, help="its length (default 20)")
    clip.add_argument("--size", default="640x360", help="WIDTHxHEIGHT (default 640x360)")
    clip.add_argument("--fps", type=float, default=10.0, help="its frame rate (default 10)")
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
    if args.remake or args.clip_only or not args.clip.is_file():
        path = make_demo_clip(args.clip, width=width, height=height, seconds=args.seconds, fps=args.fps)
        print(f"wrote {path}", flush=True)
    if args.clip_only:
        return 0
    from crowdwatch.commands import run  # the pipeline's imports (OpenCV, the model) only when it runs

    return run.main([str(args.config), "--duration", str(args.duration)])
