"""File I/O: images read the same way everywhere, and writes that a reader or a crash never sees half of."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success it is fsynced and renamed over ``path``.

    The file gets the permissions a plain ``open()`` would give (0666 less the umask), not
    mkstemp's 0600. On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that no reader ever sees a partial file."""
    with atomic_file(path) as fh:
        fh.write(data)


def read_image(path: str | Path) -> np.ndarray:
    """The image as 3-channel BGR uint8 (grayscale is converted); raises OSError when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise OSError("no such file" if not path.exists() else "not a regular file")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise OSError("not an image OpenCV can decode (unknown format, truncated or corrupt)")
    return image
