"""``crowdwatch run CONFIG``: run the pipeline on the cameras of a config file until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from crowdwatch.config import Config, load_config
from crowdwatch.errors import UsageError
from crowdwatch.secrets import RedactingFilter


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch run",
        description="Run the pipeline on the cameras of a config file until SIGTERM/SIGINT: counts go "
        "to CSV, overlay snapshots and Prometheus (/metrics, /healthz).",
    )
    parser.add_argument("config", type=Path, help="YAML config file (see configs/site.yaml)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop by itself after S seconds (demos, benchmarks)")  # fmt: skip
    return parser


def main(argv: list[str]) -> int:
    """Entry point of ``crowdwatch run``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be > 0 seconds")
    config = load_config(args.config)
    from crowdwatch.pipeline import Pipeline  # after the config is checked: OpenCV and the rest load here

    with redacted_logs(config):
        return Pipeline(config).run(duration=args.duration)


@contextlib.contextmanager
def redacted_logs(config: Config) -> Iterator[None]:
    """Mask URL credentials and every substituted secret in every log line while running.

    The filter goes on the root logger's handlers (set up by :func:`crowdwatch.cli.setup_logging`) and
    on :data:`logging.lastResort`, which prints warnings when no handler is configured.
    """
    redactor = RedactingFilter(config.secrets)
    handlers = list(logging.getLogger().handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        handler.addFilter(redactor)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(redactor)
