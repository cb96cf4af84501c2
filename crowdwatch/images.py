"""Images in the one form the rest of crowdwatch handles: 3-channel uint8 BGR, read the same way
everywhere."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


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
