"""The step-keyed training crop dataset, drawn from point-annotated folders (:mod:`crowdwatch.data.folders`).

The training data order is a pure function of ``(seed, step, slot)``: batch slot ``slot`` of step
``step`` draws its dataset, its image and its augmentation from a generator seeded with that triple.
So resuming at any step, in any number of chunks and with any number of DataLoader workers, yields
exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from crowdwatch.data.folders import Item, load_image, load_points
from crowdwatch.images import DEFAULT_MAX_PIXELS
from crowdwatch.model.p2pnet import IMAGENET_MEAN, IMAGENET_STD
from crowdwatch.train.augment import AugmentParams, random_crop

_MEAN = np.asarray(IMAGENET_MEAN, dtype=np.float32)
_STD = np.asarray(IMAGENET_STD, dtype=np.float32)


def to_tensor(image_bgr: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 BGR -> (3, H, W) float32 RGB, scaled to [0, 1] and ImageNet-normalised."""
    rgb = image_bgr[:, :, ::-1].astype(np.float32) / 255.0
    return torch.from_numpy(((rgb - _MEAN) / _STD).transpose(2, 0, 1).copy())


def slot_rng(seed: int, step: int, slot: int) -> np.random.Generator:
    """The generator behind batch slot ``slot`` of step ``step``: a pure function of its arguments."""
    return np.random.default_rng([seed, step, slot])


class StepSampler(Sampler[tuple[int, int]]):
    """Yields ``(step, slot)`` keys for steps ``start`` .. ``stop - 1``, ``slots`` per step."""

    def __init__(self, start: int, stop: int, slots: int) -> None:
        self.start, self.stop, self.slots = start, stop, slots

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for step in range(self.start, self.stop):
            for slot in range(self.slots):
                yield step, slot

    def __len__(self) -> int:
        return max(0, self.stop - self.start) * self.slots


class CropDataset(Dataset[tuple[torch.Tensor, list[torch.Tensor]]]):
    """Training crops keyed by ``(step, slot)``: a weighted dataset draw, an image, ``crops`` crops.

    Args:
        groups: per dataset, its training items.
        weights: per dataset, its relative sampling weight (normalised here).
        seed: run seed; with the key it fixes everything this slot returns.
        crops: crops taken from the drawn image.
        params: augmentation settings.
    """

    def __init__(
        self,
        groups: Sequence[Sequence[Item]],
        weights: Sequence[float],
        *,
        seed: int,
        crops: int,
        params: AugmentParams,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if len(groups) != len(weights) or not groups:
            raise ValueError("groups and weights must be non-empty and of equal length")
        if any(not group for group in groups):
            raise ValueError("every dataset needs at least one training image")
        total = float(sum(weights))
        self.groups = [list(group) for group in groups]
        self.probs = np.asarray(weights, dtype=np.float64) / total
        self.seed, self.crops, self.params = seed, crops, params
        self.max_pixels = max_pixels

    def __len__(self) -> int:  # keys are unbounded; the sampler decides how many are drawn
        return sum(len(group) for group in self.groups)

    def pick(self, step: int, slot: int) -> tuple[Item, np.random.Generator]:
        """The item and the generator for one key (exposed so tests can check the order)."""
        rng = slot_rng(self.seed, step, slot)
        group = self.groups[int(rng.choice(len(self.groups), p=self.probs))]
        return group[int(rng.integers(len(group)))], rng

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        item, rng = self.pick(*key)
        image, points = load_image(item.image, self.max_pixels), load_points(item.points)
        tensors, targets = [], []
        for _ in range(self.crops):
            crop, crop_points = random_crop(image, points, rng, self.params)
            tensors.append(to_tensor(crop))
            targets.append(torch.from_numpy(crop_points))
        return torch.stack(tensors), targets


def collate_crops(
    batch: Sequence[tuple[torch.Tensor, list[torch.Tensor]]],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Concatenate the crops of several slots: (sum of crops, 3, S, S) and one point tensor per crop."""
    images = torch.cat([crops for crops, _ in batch])
    targets = [points for _, crop_points in batch for points in crop_points]
    return images, targets
