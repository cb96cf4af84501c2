"""The ``crowdwatch`` command: one subcommand per job, each in its own module under
:mod:`crowdwatch.commands`, imported lazily. This is the one place that sets up logging.

Exit codes: 0 success, 1 runtime failure (e.g. some images unreadable), 2 bad usage, config or
input file. Errors meant for the user print as ``crowdwatch: error: ...`` with no traceback.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib
import io
import logging
import sys

from crowdwatch import __version__
from crowdwatch.errors import CrowdwatchError

#: subcommand -> (module, function taking argv and returning an exit code, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("crowdwatch.commands.init", "main", "open a camera, write a first config for it"),
    "run": ("crowdwatch.commands.run", "main", "run the pipeline on the cameras of a config file"),
    "check-config": ("crowdwatch.commands.check_config", "main", "validate a config file"),
    "demo": ("crowdwatch.commands.demo", "main", "run the pipeline on a synthetic clip (no camera needed)"),
    "count": ("crowdwatch.commands.count", "main", "count people in image files"),
    "train": ("crowdwatch.commands.train", "main", "train P2PNet on point-annotated images"),
    "evaluate": ("crowdwatch.commands.evaluate", "main", "measure weights on annotated images"),
    "convert": ("crowdwatch.commands.convert", "main", "import a published P2PNet checkpoint"),
    "benchmark": ("crowdwatch.commands.benchmark", "main", "time the model on this machine"),
    "export": ("crowdwatch.commands.export", "main", "export the model as ONNX or OpenVINO (fp32, int8)"),
    "serve": ("crowdwatch.commands.serve", "main", "serve the model to many boxes as a Triton pool"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        "usage: crowdwatch [--version] COMMAND [ARGS...]",
        "",
        "Crowd monitoring for video streams with P2PNet.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "Run 'crowdwatch COMMAND --help' for a command's options."]
    return "\n".join(lines)


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr (journald picks it up under systemd) with level and logger name."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"crowdwatch {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(_usage(), file=sys.stderr)
        print(f"\ncrowdwatch: error: unknown command {name!r}", file=sys.stderr)
        return 2
    module_name, func_name, _ = COMMANDS[name]
    try:
        command = getattr(importlib.import_module(module_name), func_name)
    except ImportError as exc:
        if exc.name in ("torch", "torchvision"):  # an OpenVINO-only install: train, convert, benchmark
            print(
                f"crowdwatch: error: crowdwatch {name} needs PyTorch ({exc}); install the optional extra: "
                "pip install 'crowdwatch[torch]'",
                file=sys.stderr,
            )
            return 2
        print(f"crowdwatch: error: command {name!r} is not available in this build ({exc})", file=sys.stderr)
        return 1
    except AttributeError as exc:
        print(f"crowdwatch: error: command {name!r} is not available in this build ({exc})", file=sys.stderr)
        return 1
    setup_logging()
    # A hung process killed by systemd's watchdog (SIGABRT) prints every thread's stack to the journal.
    # Only possible when stderr is a real file descriptor (not, say, a test's in-memory capture).
    with contextlib.suppress(io.UnsupportedOperation, AttributeError, ValueError):
        faulthandler.enable()
    try:
        return int(command(rest))
    except CrowdwatchError as exc:
        print(f"crowdwatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("crowdwatch: interrupted", file=sys.stderr)
        return 130
