"""Images in the one form the rest of crowdwatch handles: 3-channel uint8 BGR, read the same way
everywhere, and never larger than a pixel cap (checked from the file header before decoding)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from crowdwatch.errors import ImageTooLarge
from crowdwatch.imageheader import DEFAULT_MAX_PIXELS, HEADER_FORMATS, image_size

__all__ = ["DEFAULT_MAX_PIXELS", "as_bgr", "check_image_file", "check_pixels", "read_image"]


def as_bgr(image: np.ndarray) -> np.ndarray:
    """A 3-channel uint8 BGR view of a grayscale (H, W), (H, W, 1), BGR or BGRA image."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, but got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, but got dtype {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(
        f"image must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), but got {image.shape}"
    )


def check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    """Raise :class:`ImageTooLarge` when a ``width`` x ``height`` image is over ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageTooLarge(what, width, height, max_pixels)


def check_image_file(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the file's header; :class:`ImageTooLarge` over ``max_pixels``, OSError when
    the file is missing or of a format whose header crowdwatch does not read. Decodes nothing."""
    path = Path(path)
    if not path.is_file():
        raise OSError("no such file" if not path.exists() else "not a regular file")
    with path.open("rb") as file:
        size = image_size(file)
    if size is None:
        raise OSError(f"unknown image format or damaged header (crowdwatch reads {HEADER_FORMATS})")
    check_pixels(*size, max_pixels, str(path))
    return size


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image as 3-channel BGR uint8 (grayscale is converted).

    The size is read from the file's header first (:func:`image_size`) and an image over
    ``max_pixels`` is refused with :class:`ImageTooLarge` before anything is decoded, so memory stays
    bounded by the cap whatever the file claims. Raises OSError when the file is unreadable, of a
    format whose header crowdwatch does not read (see :data:`HEADER_FORMATS`), or not decodable.
    """
    path = Path(path)
    check_image_file(path, max_pixels)
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise OSError("not an image OpenCV can decode (truncated or corrupt)")
    # the header is what was checked; a file whose pixel data disagrees is not trusted either
    check_pixels(image.shape[1], image.shape[0], max_pixels, str(path))
    return image
