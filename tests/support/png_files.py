"""Real PNG files of any size, written chunk by chunk: a constant image of 20000x20000 compresses to
about 400 kB and never exists decoded in the test process (a "pixel bomb")."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_constant_png(path: Path, width: int, height: int, value: int = 0) -> Path:
    """An 8-bit grayscale PNG of ``width`` x ``height`` pixels all equal to ``value``; returns ``path``."""
    row = b"\x00" + bytes([value]) * width  # filter type 0, then the pixels
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray, no interlace
    with path.open("wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n")
        file.write(_chunk(b"IHDR", header))
        file.write(_chunk(b"IDAT", b"".join(parts)))
        file.write(_chunk(b"IEND", b""))
    return path
