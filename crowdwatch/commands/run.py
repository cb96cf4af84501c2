"""``crowdwatch run CONFIG``: run the pipeline on the cameras of a config file until SIGTERM/SIGINT.

Once the pipeline has stopped (sinks flushed and closed, final summary logged), the process ends at
once with ``os._exit`` after flushing the log handlers and stdio: nothing is left to write, and
finalizing the interpreter would only cost time (under load, its final garbage collection of torch's
objects took 6-13 s) and risk a crash (a thread still inside a torch operator aborts the process when
the interpreter shuts down under it).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from crowdwatch.config import Config, load_config
from crowdwatch.errors import UsageError
from crowdwatch.secrets import RedactingFilter

if TYPE_CHECKING:
    from crowdwatch.pipeline import Pipeline


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
    """Entry point of ``crowdwatch run``: ends the process once the pipeline has stopped (see
    :func:`serve`); returns only the exit code of a bad config or bad usage."""
    args = build_parser().parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be > 0 seconds")
    config = load_config(args.config)
    from crowdwatch.pipeline import Pipeline  # after the config is checked: OpenCV and the rest load here

    serve(Pipeline(config), duration=args.duration)


def serve(pipeline: Pipeline, duration: float | None = None) -> NoReturn:
    """Run ``pipeline`` until it stops, then end the process with its exit code (see the module doc)."""
    with redacted_logs(pipeline.config):
        code = pipeline.run(duration=duration)
    end_process(code)


def end_process(code: int) -> NoReturn:
    """Flush the log handlers and stdio, then ``os._exit(code)``: no atexit handlers, no finalization."""
    handlers = list(logging.getLogger().handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        with contextlib.suppress(Exception):  # a closed or broken stream must not change the exit code
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


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
