"""Image sizes from file headers, checked against what OpenCV decodes, on real files of every format
OpenCV writes here."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from crowdwatch.imageheader import image_size

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
    (".pam", COLOUR, []),
    (".pfm", COLOUR.astype(np.float32), []),
    (".hdr", COLOUR.astype(np.float32), []),
    (".ras", COLOUR, []),
    (".gif", COLOUR, []),
]


@pytest.mark.parametrize(
    ("ext", "image", "params"), FORMATS, ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(FORMATS)]
)
def test_header_size_matches_the_decoded_image(
    tmp_path: Path, ext: str, image: np.ndarray, params: list[int]
) -> None:
    ok, data = cv2.imencode(ext, image, params)
    assert ok
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    assert decoded is not None
    with io.BytesIO(data.tobytes()) as file:
        assert image_size(file) == (decoded.shape[1], decoded.shape[0]) == (WIDTH, HEIGHT)


def test_a_jpeg_with_a_large_exif_segment_before_the_frame_header() -> None:
    ok, data = cv2.imencode(".jpg", COLOUR)
    assert ok
    raw = data.tobytes()
    app1 = b"\xff\xe1" + (2 + 60_000).to_bytes(2, "big") + b"Exif\x00\x00" + bytes(59_994)
    with io.BytesIO(raw[:2] + app1 + raw[2:]) as file:
        assert image_size(file) == (WIDTH, HEIGHT)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
        b"\xff\xd8\xff\xe1\x00",
        b"P6\n# only a comment",
    ],
)
def test_unknown_or_cut_headers_give_none(data: bytes) -> None:
    with io.BytesIO(data) as file:
        assert image_size(file) is None
