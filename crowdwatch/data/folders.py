"""Point-annotated image folders and the fixed validation split, read the same way by training and evaluation.

A folder holds ``<name>.jpg`` beside ``<name>.txt`` (one ``x y`` head point per line, in pixels) and a
``list.txt`` pairing them (``image.jpg annotation.txt`` per line). Without ``list.txt`` every image
with a ``.txt`` beside it is used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crowdwatch.errors import DataError
from crowdwatch.images import DEFAULT_MAX_PIXELS, check_image_file, read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def dataset_names(datasets: Sequence[tuple[str | None, Path]]) -> list[str]:
    """Each dataset's name: the one given, else its folder's name. Training and evaluation share this rule,
    so a dataset is called the same in both. Two datasets with one name would merge in every table and
    metric, so that is a ValueError telling the user to name them."""
    names = [given or folder.name for given, folder in datasets]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"dataset names must be unique, but {', '.join(map(repr, repeated))} names more than one "
            "folder: give each its own name"
        )
    return names


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


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 BGR; grayscale files come back with three equal channels.
    An image over ``max_pixels`` (from its header) raises :class:`~crowdwatch.errors.ImageTooLarge`."""
    try:
        return read_image(path, max_pixels)
    except OSError as exc:
        raise DataError(path, f"cannot read image ({exc})") from None


def check_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Check an image's size from its header only: :class:`~crowdwatch.errors.ImageTooLarge` over
    ``max_pixels``, :class:`DataError` when unreadable. Cheap enough to run over a whole dataset."""
    try:
        check_image_file(path, max_pixels)
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
