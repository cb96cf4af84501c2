"""One module per ``crowdwatch`` subcommand: the only code that parses arguments.

Each module exposes ``build_parser() -> argparse.ArgumentParser`` and ``main(argv) -> int`` (the exit
code). Library code never sees an argparse namespace: a command turns its arguments into typed calls.
Logging is set up once, by :func:`crowdwatch.cli.main`, before a command runs.
"""
