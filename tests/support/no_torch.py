"""``python tests/support/no_torch.py COMMAND ARGS...``: ``crowdwatch COMMAND ARGS...`` as on a box without
torch: a meta-path finder, first on ``sys.meta_path``, refuses ``torch`` and ``torchvision`` (and their
submodules), so any import of them on the command's path fails as it would where they are not installed.

``tests/system/test_without_torch.py`` runs the openvino backend's commands through it in the test venv,
where torch is installed; the fresh OpenVINO-only venv (``.venv-openvino``) checks the same for real.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

#: What an OpenVINO-only install lacks.
BLOCKED = ("torch", "torchvision")


class BlockTorch(importlib.abc.MetaPathFinder):
    """Refuses :data:`BLOCKED` as a missing package, and remembers each attempt (printed at exit)."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] in BLOCKED:
            self.attempts.append(fullname)
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked: no torch here)", name=fullname)
        return None


def main(argv: list[str]) -> int:
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:  # nothing should have loaded it yet; make sure
            del sys.modules[name]
    sys.meta_path.insert(0, BlockTorch())
    from crowdwatch.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
