#!/usr/bin/env python3
"""The package's rooms, their sizes and the arrows between them, read from the source with ``ast``.

    python scripts/import_graph.py            # module sizes, then room -> rooms it imports
    python scripts/import_graph.py --dot      # the room graph in Graphviz dot
    python scripts/import_graph.py --check    # exit 1 if an arrow goes against LAYERS (used by the tests)

A room is a top-level module or folder of ``crowdwatch`` (``capture``, ``model``, ``images`` ...). Rooms
sit in layers (``ARCHITECTURE.md`` draws them): a room may import rooms of lower layers only, and
never one of its own layer, so the arrows run one way and there are no cycles. Imports inside
functions count too: a lazy import is still an arrow.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "crowdwatch"

#: Bottom to top. Keep in step with ARCHITECTURE.md.
LAYERS: list[set[str]] = [
    {
        "__init__",
        "errors",
        "fileio",
        "frames",
        "secrets",
        "polygons",
        "smoothing",
        "logthrottle",
        "weightsfile",
        "choices",
        "tracking",
        "poolurl",
        "httpbind",
        "timefmt",
    },
    {"config", "zones", "drawing", "density", "images", "lines"},
    {"model", "data", "capture", "sinks", "flow"},
    {"train", "evaluation", "inference", "telemetry", "demo", "web"},
    {"reload", "benchmarking"},
    {"pipeline"},
    {"commands"},
    {"cli"},
    {"__main__"},
]


def room_of(module: str) -> str:
    """``crowdwatch.capture.reader`` -> ``capture``; ``crowdwatch`` -> ``__init__``. Every ``__main__``
    module (``python -m crowdwatch``) is an entry point, above the rest."""
    parts = module.split(".")
    if parts[-1] == "__main__":
        return "__main__"
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every ``crowdwatch.*`` module that ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "crowdwatch")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] == "crowdwatch":
                found.add(target)
    return found


def graph() -> tuple[dict[str, int], dict[str, set[str]]]:
    """(module -> lines, room -> rooms it imports)."""
    sizes: dict[str, int] = {}
    arrows: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        sizes[name] = len(path.read_text().splitlines())
        source = room_of(name)
        for target in imports_of(path):
            if room_of(target) != source:
                arrows[source].add(room_of(target))
    return sizes, arrows


def layer_of(room: str) -> int:
    for index, rooms in enumerate(LAYERS):
        if room in rooms:
            return index
    raise KeyError(room)


def violations(arrows: dict[str, set[str]]) -> list[str]:
    problems = []
    rooms = set(arrows) | {r for targets in arrows.values() for r in targets}
    for room in sorted(rooms):
        try:
            layer_of(room)
        except KeyError:
            problems.append(f"{room}: not in any layer (add it to LAYERS and ARCHITECTURE.md)")
    for source, targets in sorted(arrows.items()):
        for target in sorted(targets):
            try:
                if layer_of(target) >= layer_of(source):
                    problems.append(
                        f"{source} (layer {layer_of(source)}) imports {target} "
                        f"(layer {layer_of(target)}): arrows must point down"
                    )
            except KeyError:
                continue
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dot", action="store_true", help="print the room graph as Graphviz dot")
    mode.add_argument("--check", action="store_true", help="exit 1 when an import goes against LAYERS")
    args = parser.parse_args(argv)
    sizes, arrows = graph()
    if args.check:
        problems = violations(arrows)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    if args.dot:
        print("digraph crowdwatch {\n  rankdir=BT;")
        for source, targets in sorted(arrows.items()):
            for target in sorted(targets):
                print(f'  "{source}" -> "{target}";')
        print("}")
        return 0
    print(f"{'lines':>6}  module")
    for name, lines in sorted(sizes.items(), key=lambda item: -item[1]):
        print(f"{lines:>6}  {name}")
    print(f"{sum(sizes.values()):>6}  total, {len(sizes)} modules\n")
    for layer, rooms in enumerate(LAYERS):
        for room in sorted(rooms):
            if room in arrows:
                print(f"[{layer}] {room} -> {', '.join(sorted(arrows[room]))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
