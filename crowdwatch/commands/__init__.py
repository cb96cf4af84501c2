"""One module per ``crowdwatch`` subcommand: the only code that parses arguments.

Each module exposes ``build_parser() -> argparse.ArgumentParser`` and ``main(argv) -> int`` (the exit
code). Library code never sees an argparse namespace: a command turns its arguments into typed calls.
Logging is set up once, by :func:`crowdwatch.cli.main`, before a command runs.
"""

import argparse
import re

__all__ = ["add_tile_pixels_argument", "help_text"]

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def help_text(docstring: str | None) -> str:
    """A module docstring as ``--help`` shows it: reStructuredText markup (````x````, ``:func:`x```)
    taken out, the text left as it reads."""
    text = _ROLE.sub(r"\1", docstring or "")
    return text.replace("``", "")


def add_tile_pixels_argument(parser: argparse.ArgumentParser) -> None:
    """``--tile-pixels N``, the same for every command that runs the model on images of any size."""
    parser.add_argument(
        "--tile-pixels",
        type=int,
        default=None,
        metavar="N",
        help="run the network on at most N input pixels at a time, which bounds its memory (about 500 "
        "bytes per pixel on a CPU); larger images are counted in overlapping tiles (default: 4,194,304 "
        "= 2048x2048)",
    )
