"""The layering that ARCHITECTURE.md draws holds in the code: every import points down a layer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "import_graph.py"


def test_imports_follow_the_layers() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_every_room_is_on_the_architecture_page() -> None:
    page = (REPO / "ARCHITECTURE.md").read_text()
    rooms = sorted(
        path.stem if path.is_file() else path.name
        for path in (REPO / "crowdwatch").iterdir()
        if (path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()))
        and path.stem not in ("__init__", "__main__")
    )
    missing = [room for room in rooms if f"`{room}" not in page]
    assert not missing, f"rooms not described in ARCHITECTURE.md: {missing}"


def test_the_check_catches_an_upward_import() -> None:
    """The checker is not vacuous: a model module importing the pipeline is reported."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import import_graph
    finally:
        sys.path.pop(0)
    problems = import_graph.violations({"model": {"pipeline"}, "pipeline": {"model"}})
    assert problems == ["model (layer 2) imports pipeline (layer 5): arrows must point down"]
