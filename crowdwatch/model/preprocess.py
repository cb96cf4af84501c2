"""Image preprocessing for P2PNet: colour order, optional resize, normalisation, padding, batching.

Batches come as numpy arrays (:meth:`Preprocessor.array`, what the openvino backend runs: no torch
needed) or as torch tensors on a device (:meth:`Preprocessor.batch`, for the torch backend, which
normalises on the GPU when there is one). Both compute the same float32 values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from crowdwatch.images import as_bgr
from crowdwatch.model.arch import IMAGENET_MEAN, IMAGENET_STD, SIZE_DIVISOR

if TYPE_CHECKING:  # torch is imported only by the methods that make torch tensors
    import torch


@dataclass(frozen=True)
class InputGeometry:
    """How one source image was placed into the network input.

    ``scale_x``/``scale_y`` map source pixels to input pixels (input = source * scale); the image
    occupies the top-left ``resized_hw`` of the padded input.
    """

    source_hw: tuple[int, int]
    resized_hw: tuple[int, int]

    @property
    def scale_x(self) -> float:
        return self.resized_hw[1] / self.source_hw[1]

    @property
    def scale_y(self) -> float:
        return self.resized_hw[0] / self.source_hw[0]

    def to_source(self, points: np.ndarray) -> np.ndarray:
        """(K, 2) x, y in input pixels -> float32 source pixels: a division by the scale, which undoes the
        resize exactly in continuous pixel coordinates."""
        out = points.astype(np.float64)
        out[:, 0] /= self.scale_x
        out[:, 1] /= self.scale_y
        return out.astype(np.float32)


def padded_size(height: int, width: int, divisor: int = SIZE_DIVISOR) -> tuple[int, int]:
    """Smallest (H, W) at least as large as the input whose sides are multiples of ``divisor``."""
    return -(-height // divisor) * divisor, -(-width // divisor) * divisor


class Preprocessor:
    """Turns a list of images of any sizes into one normalised, padded batch.

    Args:
        mean, std: per-channel RGB statistics for images scaled to [0, 1].
        longest_side: if set, images whose longest side exceeds it are shrunk (aspect kept) so that
            it equals this; smaller images are left alone. Points are mapped back by the decoder.
        channel_order: "bgr" (OpenCV, the default) or "rgb" for the arrays passed in.
    """

    def __init__(
        self,
        *,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        longest_side: int | None = None,
        channel_order: str = "bgr",
    ) -> None:
        if longest_side is not None and longest_side < SIZE_DIVISOR:
            raise ValueError(f"longest_side must be at least {SIZE_DIVISOR}, but got {longest_side}")
        if channel_order not in ("bgr", "rgb"):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', but got {channel_order!r}")
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.longest_side = longest_side
        self.channel_order = channel_order

    def geometry(self, height: int, width: int) -> InputGeometry:
        """Where an image of this size lands in the network input under the resize policy."""
        if height < 1 or width < 1:
            raise ValueError(f"image must be at least 1x1, but got {height}x{width}")
        resized = (height, width)
        if self.longest_side is not None and max(height, width) > self.longest_side:
            factor = self.longest_side / max(height, width)
            resized = (max(1, round(height * factor)), max(1, round(width * factor)))
        return InputGeometry(source_hw=(height, width), resized_hw=resized)

    def resize(self, image: np.ndarray) -> tuple[np.ndarray, InputGeometry]:
        """One image as BGR uint8 at its network-input size (under the resize policy), and its geometry."""
        if self.channel_order == "rgb" and isinstance(image, np.ndarray) and image.ndim == 3:
            image = image[..., ::-1]
        bgr = as_bgr(np.ascontiguousarray(image))
        geo = self.geometry(*bgr.shape[:2])
        if geo.resized_hw != geo.source_hw:
            bgr = cv2.resize(bgr, (geo.resized_hw[1], geo.resized_hw[0]), interpolation=cv2.INTER_AREA)
        return bgr, geo

    def _factors(self) -> tuple[list[float], list[float]]:
        """Scale to [0, 1] and normalise in one multiply-add: x * (1 / (255 std)) - mean / std."""
        mul = [1.0 / (255.0 * s) for s in self.std]
        add = [-m / s for m, s in zip(self.mean, self.std, strict=True)]
        return mul, add

    def array(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """:meth:`batch` as a numpy array: the same (B, 3, H, W) float32 values, without torch."""
        if len(images) == 0:
            raise ValueError("images must not be empty")
        height, width = padded_size(max(im.shape[0] for im in images), max(im.shape[1] for im in images))
        batch = np.zeros((len(images), 3, height, width), dtype=np.float32)
        mul, add = (np.asarray(f, dtype=np.float32) for f in self._factors())
        for i, bgr in enumerate(images):
            h, w = bgr.shape[:2]
            # BGR uint8 (H, W, 3) -> RGB float planes, one contiguous plane at a time (twice as fast as
            # a strided (3, H, W) copy), each x * mul + add in float32 as the torch path computes it.
            for c, plane in enumerate(reversed(cv2.split(np.ascontiguousarray(bgr)))):
                out = batch[i, c, :h, :w]
                np.multiply(plane, mul[c], out=out, dtype=np.float32)
                np.add(out, add[c], out=out, dtype=np.float32)
        return batch

    def batch(self, images: Sequence[np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
        """Normalise and pad BGR uint8 images already at their input size (:meth:`resize`; views of one,
        such as tiles, do too) into one (B, 3, H, W) float32 torch batch on ``device``, H and W multiples
        of 16."""
        import torch

        if len(images) == 0:
            raise ValueError("images must not be empty")
        device = torch.device(device)
        height, width = padded_size(max(im.shape[0] for im in images), max(im.shape[1] for im in images))
        batch = torch.zeros((len(images), 3, height, width), dtype=torch.float32, device=device)
        mul, add = (torch.tensor(f, device=device).view(3, 1, 1) for f in self._factors())
        for i, bgr in enumerate(images):
            h, w = bgr.shape[:2]
            # (H, W, 3) BGR uint8 -> (3, H, W) RGB float.
            chw = torch.from_numpy(bgr).to(device).permute(2, 0, 1).flip(0).float()
            batch[i, :, :h, :w] = chw * mul + add
        return batch

    def __call__(
        self, images: Sequence[np.ndarray], device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, list[InputGeometry]]:
        """Batch ``images``.

        Returns:
            (B, 3, H, W) float32 tensor on ``device``: RGB, normalised, zero-padded (after
            normalisation) at the bottom and right to the batch's largest size rounded up to a
            multiple of 16; and one :class:`InputGeometry` per image.
        """
        if len(images) == 0:
            raise ValueError("images must not be empty")
        prepared, geometries = zip(*(self.resize(image) for image in images), strict=True)
        return self.batch(prepared, device), list(geometries)
