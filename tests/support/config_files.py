"""Writing config files for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_config(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    """``text`` (dedented) as ``tmp_path / name``; returns the path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path
