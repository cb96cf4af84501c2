"""Cheap validation during training: counts on the held-out images, optionally downscaled.

Images are loaded once, downscaled so their longest side is at most ``longest_side`` (points scaled
alike; the training scale range 0.7-1.3 covers 768/1024), kept as uint8, and run one at a time.
Preprocessing and decoding are the model package's own (:class:`Preprocessor`, :func:`decode`), so a
validation count is what ``crowdwatch count`` would say at that size.

Besides MAE and RMSE, two ratios to the true count show how far a run is while it still counts almost
nobody, a phase in which MAE stays flat at the mean count: ``mass_ratio`` (the person probabilities of
all candidates summed, over the true count) and ``counted_ratio`` (the candidates above the threshold,
over the true count). A network that has learned where people are but spreads each over several
candidates has a mass ratio near 1 and a counted ratio near 0; the counted ratio rises as it learns
to give each person one confident candidate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np
import torch

from crowdwatch.data.folders import Item, load_image, load_points
from crowdwatch.data.scoring import count_errors, dataset_groups
from crowdwatch.images import DEFAULT_MAX_PIXELS
from crowdwatch.model.postprocess import decode
from crowdwatch.model.preprocess import Preprocessor


@dataclasses.dataclass(frozen=True)
class ValImage:
    dataset: str
    name: str
    image: np.ndarray  # (H, W, 3) uint8 BGR, already downscaled
    gt_count: int


def load_val_images(
    items: Sequence[Item], longest_side: int | None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[ValImage]:
    """Read the validation items, downscaled to ``longest_side`` (never upscaled)."""
    images = []
    for item in items:
        image = load_image(item.image, max_pixels)
        count = len(load_points(item.points))
        height, width = image.shape[:2]
        if longest_side is not None and max(height, width) > longest_side:
            scale = longest_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        images.append(ValImage(item.dataset, item.image.name, image, count))
    return images


@dataclasses.dataclass(frozen=True)
class ValCount:
    count: int  # candidates above the threshold whose points fall inside the image
    mass: float  # person probabilities of all candidates inside the image, summed


@torch.inference_mode()
def count_image(
    net: torch.nn.Module,
    image_bgr: np.ndarray,
    *,
    threshold: float,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
) -> ValCount:
    """People counted in one image, and the probability mass of its candidates."""
    batch, geometries = Preprocessor()([image_bgr], device=device)
    enabled = autocast_dtype is not None
    with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=enabled):
        out = net(batch)
    scores = decode(out["logits"], out["points"], geometries, 0.0)[0].scores  # every candidate inside
    return ValCount(count=int((scores > threshold).sum()), mass=float(scores.sum()))


def validate(
    net: torch.nn.Module,
    images: Sequence[ValImage],
    *,
    threshold: float,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
) -> dict[str, dict[str, float]]:
    """Per dataset and "all": {"mae", "rmse", "n", "mass_ratio", "counted_ratio"} on the validation
    images (the ratios are sums over the group's images divided by its true count)."""
    was_training = net.training
    net.eval()
    try:
        preds = [
            count_image(net, v.image, threshold=threshold, device=device, autocast_dtype=autocast_dtype)
            for v in images
        ]
    finally:
        net.train(was_training)
    results: dict[str, dict[str, float]] = {}
    for name, idx in dataset_groups([v.dataset for v in images]).items():
        gts = [images[i].gt_count for i in idx]
        errors = count_errors([preds[i].count for i in idx], gts)
        people = max(sum(gts), 1)
        results[name] = {
            **errors,
            "n": len(idx),
            "mass_ratio": sum(preds[i].mass for i in idx) / people,
            "counted_ratio": sum(preds[i].count for i in idx) / people,
        }
    return results
