"""Model benchmark for the closing note: naive published-style inference vs crowdwatch's CPU path.

    python benchmarks/bench_model.py            # 640x360, 1280x720, 1920x1080; prints a table

Same as ``crowdwatch benchmark``; see crowdwatch/commands/benchmark.py for what each path does.
"""

import sys

from crowdwatch.commands.benchmark import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
