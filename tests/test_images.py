"""Reading images under the pixel cap: real files, refused from their header before any decoding."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from support.png_files import write_constant_png

from crowdwatch.errors import ImageTooLarge, UsageError
from crowdwatch.images import DEFAULT_MAX_PIXELS, read_image


def test_a_pixel_bomb_is_refused_from_its_header_without_decoding(tmp_path: Path) -> None:
    bomb = write_constant_png(tmp_path / "bomb.png", 10_000, 6_000)  # 60 MP, ~60 kB on disk
    assert bomb.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLarge) as info:
            read_image(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # decoding it would allocate 180 MB (numpy memory is traced)
    assert isinstance(info.value, UsageError)  # exit 2 at the command line
    assert (info.value.width, info.value.height, info.value.max_pixels) == (10_000, 6_000, DEFAULT_MAX_PIXELS)
    assert "10000x6000 = 60,000,000 pixels is over the pixel cap of 50,000,000" in str(info.value)


def test_the_cap_is_inclusive_and_configurable(tmp_path: Path) -> None:
    path = write_constant_png(tmp_path / "small.png", 300, 200, value=90)
    image = read_image(path, max_pixels=60_000)
    assert image.shape == (200, 300, 3) and int(image[0, 0, 0]) == 90
    with pytest.raises(ImageTooLarge):
        read_image(path, max_pixels=59_999)


def test_a_format_whose_header_is_unknown_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "mystery.img"
    path.write_bytes(b"MYSTERY-FORMAT" + bytes(100))
    with pytest.raises(OSError, match="unknown image format"):
        read_image(path)
