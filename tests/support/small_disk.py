"""A small real disk for full-disk tests: a 256 kB tmpfs (the ``small_disk`` fixture in tests/conftest.py)
and :func:`fill`, which writes zeros onto it until the kernel says ENOSPC. No tests live here."""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TMPFS_SIZE = "256k"


def mounted_small_disk() -> Iterator[Path]:
    """A fresh 256 kB tmpfs, unmounted afterwards (skips where mounting is not permitted)."""
    mount_point = Path(tempfile.mkdtemp(prefix="cw-disk-"))
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


def fill(disk: Path) -> Path:
    """Write zeros until the disk is full (ENOSPC); returns the filler file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, bytes(4096))
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return filler
    finally:
        os.close(fd)
