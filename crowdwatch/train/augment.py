"""Training augmentation: random scale, random crop and horizontal flip, applied to image and points.

Points use continuous pixel coordinates (the centre of pixel column c is x = c + 0.5 for the image
warp; annotations are taken as given). A crop is one affine warp from the source image, so scaling
the whole image first is never needed: only the crop's pixels are resampled.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from crowdwatch.model.p2pnet import IMAGENET_MEAN

#: Padding colour (BGR uint8) where a crop reaches past the image: the ImageNet mean, which becomes
#: zero after normalisation, like the zero padding of inference.
PAD_BGR = tuple(round(255 * c) for c in reversed(IMAGENET_MEAN))


@dataclasses.dataclass(frozen=True)
class AugmentParams:
    """Crop side in pixels, scale range (uniform), and whether to flip half of the crops."""

    crop_size: int = 128
    scale_min: float = 0.7
    scale_max: float = 1.3
    flip: bool = True

    def __post_init__(self) -> None:
        if self.crop_size < 16 or self.crop_size % 16:
            raise ValueError(f"crop_size must be a positive multiple of 16, but got {self.crop_size}")
        if not 0 < self.scale_min <= self.scale_max:
            raise ValueError(f"need 0 < scale_min <= scale_max, but got {self.scale_min}, {self.scale_max}")


def crop_transform(
    image_size: tuple[int, int], rng: np.random.Generator, params: AugmentParams
) -> tuple[float, float, float, bool]:
    """Draw (scale, x0, y0, flip): the crop is [x0, x0 + S) x [y0, y0 + S) of the scaled image."""
    height, width = image_size
    scale = float(rng.uniform(params.scale_min, params.scale_max))
    room_x = max(0.0, width * scale - params.crop_size)
    room_y = max(0.0, height * scale - params.crop_size)
    x0 = float(np.floor(rng.uniform(0.0, room_x + 1e-9)))
    y0 = float(np.floor(rng.uniform(0.0, room_y + 1e-9)))
    flip = bool(params.flip and rng.random() < 0.5)
    return scale, x0, y0, flip


def apply_crop(
    image: np.ndarray, points: np.ndarray, transform: tuple[float, float, float, bool], crop_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Warp the image into the crop and map the points; points outside the crop are dropped."""
    scale, x0, y0, flip = transform
    # Point p maps to p' = scale * p - (x0, y0). For pixel centres (u + 0.5 = scale * (x + 0.5) - x0)
    # the image warp needs the extra half-pixel terms.
    shift = 0.5 * scale - 0.5
    matrix = np.array([[scale, 0.0, shift - x0], [0.0, scale, shift - y0]], dtype=np.float64)
    crop = cv2.warpAffine(
        image,
        matrix,
        (crop_size, crop_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=PAD_BGR,
    )
    mapped = points.astype(np.float32) * scale - np.asarray([x0, y0], dtype=np.float32)
    inside = ((mapped >= 0) & (mapped < crop_size)).all(axis=1)
    mapped = mapped[inside]
    if flip:
        crop = np.ascontiguousarray(crop[:, ::-1])
        mapped[:, 0] = crop_size - mapped[:, 0]
    return crop, mapped.reshape(-1, 2).astype(np.float32)


def random_crop(
    image: np.ndarray, points: np.ndarray, rng: np.random.Generator, params: AugmentParams
) -> tuple[np.ndarray, np.ndarray]:
    """One augmented (S, S, 3) crop and its (K, 2) float32 points in crop pixels."""
    transform = crop_transform(image.shape[:2], rng, params)
    return apply_crop(image, points, transform, params.crop_size)
