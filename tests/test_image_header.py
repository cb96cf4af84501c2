"""Image sizes from file headers (Pillow, no pixel decoded), checked against what OpenCV decodes, on real
files of every format OpenCV writes here; formats Pillow cannot identify are refused, never decoded."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from crowdwatch.images import check_image_file, image_size, read_image

WIDTH, HEIGHT = 37, 23  # odd, different, and each below 256 (catches byte order and swapped fields)
rng = np.random.default_rng(0)
COLOUR = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
GRAY = COLOUR[:, :, 0].copy()

FORMATS = [
    (".png", COLOUR, []),
    (".png", GRAY, [cv2.IMWRITE_PNG_COMPRESSION, 9]),
    (".jpg", COLOUR, []),
    (".jpg", COLOUR, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    (".bmp", COLOUR, []),
    (".bmp", GRAY, []),
    (".webp", COLOUR, [cv2.IMWRITE_WEBP_QUALITY, 80]),  # lossy: VP8
    (".webp", COLOUR, [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless: VP8L
    (".tiff", COLOUR, []),
    (".ppm", COLOUR, []),
    (".pgm", GRAY, []),
    (".pbm", GRAY, []),
    (".ras", COLOUR, []),
    (".gif", COLOUR, []),
]
#: Written by OpenCV, but not identified by Pillow: their size cannot be checked before decoding.
UNCHECKED_FORMATS = [
    (".pam", COLOUR),
    (".pfm", COLOUR.astype(np.float32)),
    (".hdr", COLOUR.astype(np.float32)),
]


def _write(tmp_path: Path, ext: str, image: np.ndarray, params: list[int] | None = None) -> Path:
    ok, data = cv2.imencode(ext, image, params or [])
    assert ok
    path = tmp_path / f"image{ext}"
    path.write_bytes(data.tobytes())
    return path


@pytest.mark.parametrize(
    ("ext", "image", "params"), FORMATS, ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(FORMATS)]
)
def test_header_size_matches_the_decoded_image(
    tmp_path: Path, ext: str, image: np.ndarray, params: list[int]
) -> None:
    path = _write(tmp_path, ext, image, params)
    decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert decoded is not None
    assert image_size(path) == (decoded.shape[1], decoded.shape[0]) == (WIDTH, HEIGHT)
    assert read_image(path).shape == (HEIGHT, WIDTH, 3)


@pytest.mark.parametrize(("ext", "image"), UNCHECKED_FORMATS, ids=[e for e, _ in UNCHECKED_FORMATS])
def test_a_format_pillow_does_not_identify_is_refused_with_the_list_of_formats(
    tmp_path: Path, ext: str, image: np.ndarray
) -> None:
    path = _write(tmp_path, ext, image)
    with pytest.raises(OSError, match=r"unknown image format .*PNG, JPEG"):
        check_image_file(path)


def test_a_jpeg_with_a_large_exif_segment_before_the_frame_header(tmp_path: Path) -> None:
    ok, data = cv2.imencode(".jpg", COLOUR)
    assert ok
    raw = data.tobytes()
    app1 = b"\xff\xe1" + (2 + 60_000).to_bytes(2, "big") + b"Exif\x00\x00" + bytes(59_994)
    path = tmp_path / "exif.jpg"
    path.write_bytes(raw[:2] + app1 + raw[2:])
    assert image_size(path) == (WIDTH, HEIGHT)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        b"\x89PNG\r\n\x1a\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00",  # IHDR cut short
        b"\xff\xd8\xff",
        b"\xff\xd8\xff\xe1\x00",
        b"P6\n# only a comment",
        b"GIF89a\x01",
        b"II*\x00\xff\xff\xff\x7f",  # TIFF whose first directory lies far past the end
    ],
)
def test_unknown_or_cut_headers_are_unreadable_not_a_crash(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "cut.img"
    path.write_bytes(data)
    with pytest.raises(OSError, match=r"unknown image format|damaged image header"):
        image_size(path)
