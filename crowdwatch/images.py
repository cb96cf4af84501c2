"""Images in the one form the rest of crowdwatch handles: 3-channel uint8 BGR, read the same way
everywhere, and never larger than a pixel cap (checked from the file header before decoding)."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from crowdwatch.choices import DEFAULT_MAX_PIXELS
from crowdwatch.errors import ImageTooLarge

# crowdwatch checks every image against its own cap (max_pixels) before decoding, and never decodes with
# Pillow: Pillow's process-wide bomb limit (89 MP, an error over 179 MP) would refuse images that a user
# allowed with a larger max_pixels, before crowdwatch could name its own cap in the error.
Image.MAX_IMAGE_PIXELS = None

#: What Pillow raises on a hostile or cut header: it is "unreadable", never a crash.
_HEADER_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error)

__all__ = ["DEFAULT_MAX_PIXELS", "as_bgr", "check_image_file", "check_pixels", "image_size", "read_image"]


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
    size = image_size(path)
    check_pixels(*size, max_pixels, str(path))
    return size


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file's header, read by Pillow without decoding a pixel (OpenCV has no
    header-only API: ``IMREAD_REDUCED_*`` still decodes). OSError for a format Pillow does not identify
    or a damaged header: such a file's size cannot be checked before decoding, so it is not read."""
    try:
        with warnings.catch_warnings():  # a damaged header warns, then fails: the OSError says it once
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                width, height = image.size
    except UnidentifiedImageError:
        raise OSError(
            "unknown image format (crowdwatch reads the formats both Pillow and OpenCV read: "
            "PNG, JPEG, JPEG 2000, BMP, WebP, GIF, TIFF, PBM/PGM/PPM, Sun raster)"
        ) from None
    except _HEADER_ERRORS as exc:
        raise OSError(f"damaged image header ({exc})") from None
    return int(width), int(height)


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image as 3-channel BGR uint8 (grayscale is converted).

    The size is read from the file's header first (:func:`image_size`) and an image over
    ``max_pixels`` is refused with :class:`ImageTooLarge` before anything is decoded, so memory stays
    bounded by the cap whatever the file claims. Raises OSError when the file is unreadable, of a
    format whose header crowdwatch does not read (see :func:`image_size`), or not decodable.
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
