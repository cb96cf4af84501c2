"""One module per ``crowdwatch`` subcommand: the only code that parses arguments.

Each module exposes ``build_parser() -> argparse.ArgumentParser`` and ``main(argv) -> int`` (the exit
code). Library code never sees an argparse namespace: a command turns its arguments into typed calls.
Logging is set up once, by :func:`crowdwatch.cli.main`, before a command runs.
"""

import re

__all__ = ["help_text"]

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def help_text(docstring: str | None) -> str:
    """A module docstring as ``--help`` shows it: reStructuredText markup (````x````, ``:func:`x```)
    taken out, the text left as it reads."""
    text = _ROLE.sub(r"\1", docstring or "")
    return text.replace("``", "")
