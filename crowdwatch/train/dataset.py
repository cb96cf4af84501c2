"""Point-annotated image folders, the fixed validation split, and the step-keyed crop dataset.

A folder holds ``<name>.jpg`` beside ``<name>.txt`` (one ``x y`` head point per line, in pixels) and a
``list.txt`` pairing them (``image.jpg annotation.txt`` per line). Without ``list.txt`` every image
with a ``.txt`` beside it is used.

The training data order is a pure function of ``(seed, step, slot)``: batch slot ``slot`` of step
``step`` draws its dataset, its image and its augmentation from a generator seeded with that triple.
So resuming at any step, in any number of chunks and with any number of DataLoader workers, yields
exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from crowdwatch.errors import UsageError
from crowdwatch.fileio import read_image
from crowdwatch.model.p2pnet import IMAGENET_MEAN, IMAGENET_STD
from crowdwatch.train.augment import AugmentParams, random_crop

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DataError(UsageError):
    """An image or annotation file that cannot be read. ``path`` is the offending file."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {message}")


@dataclasses.dataclass(frozen=True)
class Item:
    """One annotated image: where it lives and which dataset it belongs to."""

    dataset: str
    image: Path
    points: Path


def read_folder(folder: str | Path, dataset: str | None = None) -> list[Item]:
    """List a folder's annotated images, sorted by image file name."""
    folder = Path(folder)
    name = dataset or folder.name
    if not folder.is_dir():
        raise DataError(folder, "not a directory of images and point files")
    listing = folder / "list.txt"
    items: list[Item] = []
    if listing.is_file():
        for lineno, line in enumerate(listing.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise DataError(listing, f"line {lineno}: expected 'image annotation', got {line!r}")
            items.append(Item(name, folder / fields[0], folder / fields[1]))
    else:
        for image in folder.iterdir():
            if image.suffix.lower() in IMAGE_SUFFIXES and image.with_suffix(".txt").is_file():
                items.append(Item(name, image, image.with_suffix(".txt")))
    if not items:
        raise DataError(folder, "no annotated images (expected list.txt or <name>.jpg + <name>.txt)")
    return sorted(items, key=lambda item: item.image.name)


def split_items(items: Sequence[Item], *, every: int, part: str) -> list[Item]:
    """The fixed validation split: every ``every``-th item of the sorted list (indices 0, every, ...).

    ``part`` is "val" (those items), "train" (the others) or "all".
    """
    if part == "all" or every <= 0:
        return list(items) if part != "val" else []
    if part not in ("train", "val"):
        raise ValueError(f"part must be 'train', 'val' or 'all', but got {part!r}")
    held_out = part == "val"
    return [item for index, item in enumerate(items) if (index % every == 0) == held_out]


def load_image(path: str | Path) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 BGR; grayscale files come back with three equal channels."""
    try:
        return read_image(path)
    except OSError as exc:
        raise DataError(path, f"cannot read image ({exc})") from None


def load_points(path: str | Path) -> np.ndarray:
    """Read ``x y`` lines as a (K, 2) float32 array (K may be 0)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise DataError(path, f"cannot read point file ({exc.strerror})") from exc
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.replace(",", " ").split()
        if not fields:
            continue
        try:
            rows.append((float(fields[0]), float(fields[1])))
        except (ValueError, IndexError):
            raise DataError(path, f"line {lineno}: expected 'x y', got {line!r}") from None
    return np.asarray(rows, dtype=np.float32).reshape(-1, 2)


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


class CropDataset(Dataset):
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
    ) -> None:
        if len(groups) != len(weights) or not groups:
            raise ValueError("groups and weights must be non-empty and of equal length")
        if any(not group for group in groups):
            raise ValueError("every dataset needs at least one training image")
        total = float(sum(weights))
        self.groups = [list(group) for group in groups]
        self.probs = np.asarray(weights, dtype=np.float64) / total
        self.seed, self.crops, self.params = seed, crops, params

    def __len__(self) -> int:  # keys are unbounded; the sampler decides how many are drawn
        return sum(len(group) for group in self.groups)

    def pick(self, step: int, slot: int) -> tuple[Item, np.random.Generator]:
        """The item and the generator for one key (exposed so tests can check the order)."""
        rng = slot_rng(self.seed, step, slot)
        group = self.groups[int(rng.choice(len(self.groups), p=self.probs))]
        return group[int(rng.integers(len(group)))], rng

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        item, rng = self.pick(*key)
        image, points = load_image(item.image), load_points(item.points)
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
