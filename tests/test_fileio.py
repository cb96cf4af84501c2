"""Atomic file writes: readers never see half a file, failures leave the old one, modes follow umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from crowdwatch.fileio import atomic_file, write_atomic


def test_mode_follows_umask_not_mkstemp(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "snap.jpg", b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "snap.jpg").stat().st_mode) == 0o644


def test_failure_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    write_atomic(path, b"old")

    def fail_half_way() -> None:
        with atomic_file(path) as fh:
            fh.write(b"half of the new")
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        fail_half_way()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pt"]
