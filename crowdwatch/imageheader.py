"""An image's width and height from its file header, without decoding a pixel.

OpenCV has no header-only API (``IMREAD_REDUCED_*`` still decodes), so a 20000x20000 PNG of a few
hundred kB would be fully decoded before its size could be checked. :func:`image_size` reads the few
header bytes of the formats OpenCV decodes: PNG, JPEG, JPEG 2000 (JP2 and raw J2K), BMP, WebP, GIF,
TIFF, the Netpbm family (PBM/PGM/PPM/PAM/PFM), Radiance HDR and Sun raster (OpenEXR, which this
OpenCV build does not write, is left out). Anything else is unknown (None): the caller refuses it, since
its size cannot be checked before decoding.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

__all__ = ["DEFAULT_MAX_PIXELS", "HEADER_FORMATS", "image_size"]

#: The default pixel cap for images and camera frames (config ``max_pixels``, ``--max-pixels``): 50 MP.
#: A 48 MP phone photo or an 8K frame (33 MP) passes; its decoded BGR copy is 150 MB. A 20000x20000
#: "pixel bomb" (400 MP: 1.2 GB decoded, tens of GB through the network) is refused from its header.
DEFAULT_MAX_PIXELS = 50_000_000

HEADER_FORMATS = (
    "PNG, JPEG, JPEG 2000, BMP, WebP, GIF, TIFF, PBM/PGM/PPM/PAM/PFM, Radiance HDR and Sun raster"
)
_HEAD = 64
#: JPEG start-of-frame markers (SOF0-SOF15 less DHT 0xC4, JPG 0xC8 and DAC 0xCC) hold the frame size
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM carry no length
_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257
_JPEG_MAX_SEGMENTS = 1000  # a file of endless empty segments ends the walk, not the process
_TIFF_MAX_ENTRIES = 4096


def image_size(file: BinaryIO) -> tuple[int, int] | None:
    """(width, height) from the header of the open binary ``file``, or None for an unknown format or a
    header too short or inconsistent to read. Reads at most a few kB (JPEG: its segment headers)."""
    head = file.read(_HEAD)
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return width, height
    if head.startswith(b"\xff\xd8"):
        return _jpeg(file)
    if head.startswith(b"BM") and len(head) >= 26:
        return _bmp(head)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _webp(head)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return width, height
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(file, "<" if head[:2] == b"II" else ">")
    if head[:1] == b"P" and head[1:2] in b"123456Ff" and len(head) > 2:
        return _netpbm(head + file.read(4096))
    if head.startswith(b"P7\n"):
        return _pam(head + file.read(4096))
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):
        return _radiance(head + file.read(4096))
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        at = (head + file.read(4096)).find(b"ihdr")
        return None if at < 0 else _jp2_ihdr(file, at)
    if head.startswith(b"\xff\x4f\xff\x51") and len(head) >= 24:
        x_size, y_size, x_offset, y_offset = struct.unpack(">IIII", head[8:24])
        return x_size - x_offset, y_size - y_offset
    if head.startswith(b"\x59\xa6\x6a\x95") and len(head) >= 12:
        width, height = struct.unpack(">II", head[4:12])
        return width, height
    return None


def _jpeg(file: BinaryIO) -> tuple[int, int] | None:
    file.seek(2)
    for _ in range(_JPEG_MAX_SEGMENTS):
        byte = file.read(1)
        if byte != b"\xff":
            return None
        marker = file.read(1)
        while marker == b"\xff":  # fill bytes
            marker = file.read(1)
        if not marker:
            return None
        code = marker[0]
        if code in _JPEG_STANDALONE:
            continue
        if code in (0xD8, 0xD9, 0xDA):  # SOI again, EOI or start of scan before any frame header
            return None
        length_bytes = file.read(2)
        if len(length_bytes) < 2:
            return None
        (length,) = struct.unpack(">H", length_bytes)
        if code in _JPEG_SOF:
            frame = file.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        if length < 2:
            return None
        file.seek(length - 2, 1)
    return None


def _bmp(head: bytes) -> tuple[int, int] | None:
    (dib,) = struct.unpack("<I", head[14:18])
    if dib == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", head[18:22])
        return width, height
    width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)  # a negative height is a top-down bitmap


def _webp(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and head[20:21] == b"\x2f":
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    return None


def _tiff(file: BinaryIO, order: str) -> tuple[int, int] | None:
    """The first image (IFD) of a classic TIFF: tags ImageWidth and ImageLength (SHORT or LONG)."""
    file.seek(4)
    (offset,) = struct.unpack(order + "I", file.read(4))
    file.seek(offset)
    count_bytes = file.read(2)
    if len(count_bytes) < 2:
        return None
    (count,) = struct.unpack(order + "H", count_bytes)
    size: dict[int, int] = {}
    for _ in range(min(count, _TIFF_MAX_ENTRIES)):
        entry = file.read(12)
        if len(entry) < 12:
            return None
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (_TIFF_WIDTH, _TIFF_HEIGHT):
            if kind == 3:  # SHORT
                (size[tag],) = struct.unpack(order + "H", entry[8:10])
            elif kind == 4:  # LONG
                (size[tag],) = struct.unpack(order + "I", entry[8:12])
            else:
                return None
        if len(size) == 2:
            return size[_TIFF_WIDTH], size[_TIFF_HEIGHT]
    return None


def _jp2_ihdr(file: BinaryIO, at: int) -> tuple[int, int] | None:
    file.seek(at + 4)
    box = file.read(8)
    if len(box) < 8:
        return None
    height, width = struct.unpack(">II", box)
    return width, height


def _pam(head: bytes) -> tuple[int, int] | None:
    """PAM (P7): ``WIDTH n`` and ``HEIGHT n`` lines before ``ENDHDR``."""
    fields: dict[bytes, int] = {}
    for line in head.split(b"\n")[1:-1]:
        words = line.split()
        if words[:1] == [b"ENDHDR"]:
            break
        if len(words) == 2 and words[0] in (b"WIDTH", b"HEIGHT") and words[1].isdigit():
            fields[words[0]] = int(words[1])
    if len(fields) != 2:
        return None
    return fields[b"WIDTH"], fields[b"HEIGHT"]


def _radiance(head: bytes) -> tuple[int, int] | None:
    """Radiance HDR: header lines, an empty line, then the resolution line (``-Y h +X w``)."""
    _, blank, rest = head.partition(b"\n\n")
    words = rest.split(b"\n", 1)[0].split()
    if not blank or len(words) != 4 or not (words[1].isdigit() and words[3].isdigit()):
        return None
    first, second = int(words[1]), int(words[3])
    return (second, first) if words[0][1:] == b"Y" else (first, second)


def _netpbm(head: bytes) -> tuple[int, int] | None:
    """P1-P6 and PFM (PF/Pf): the magic, then width and height as ASCII, '#' comments allowed."""
    tokens: list[int] = []
    lines = head[2:].split(b"\n")
    for line in lines[:-1]:  # the last piece may be cut off mid-number
        for word in line.split(b"#", 1)[0].split():
            if not word.isdigit():
                return None
            tokens.append(int(word))
            if len(tokens) == 2:
                return tokens[0], tokens[1]
    return None
