"""Synthetic point-annotated images (dark blobs on a noisy background) for tests and smoke runs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def blob_image(
    rng: np.random.Generator, size: tuple[int, int], count: int, radius: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """One (H, W, 3) uint8 BGR image with ``count`` dark round blobs, and their (count, 2) centres."""
    height, width = size
    image = rng.normal(170, 12, size=(height, width, 3)).clip(0, 255).astype(np.uint8)
    points = np.stack([rng.uniform(4, width - 4, count), rng.uniform(4, height - 4, count)], axis=1)
    for x, y in points:
        cv2.circle(
            image,
            (round(x * 4), round(y * 4)),
            int(radius * 4),
            (40, 30, 30),
            -1,
            lineType=cv2.LINE_AA,
            shift=2,
        )
    return image, points.astype(np.float32)


def write_blob_folder(
    folder: str | Path, n: int, *, size: tuple[int, int] = (128, 128), max_count: int = 20, seed: int = 0
) -> Path:
    """Write ``n`` blob images with point files and a list.txt into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        image, points = blob_image(rng, size, int(rng.integers(0, max_count + 1)))
        name = f"img_{i:04d}"
        cv2.imwrite(str(folder / f"{name}.png"), image)
        np.savetxt(folder / f"{name}.txt", points, fmt="%.2f")
        lines.append(f"{name}.png {name}.txt")
    (folder / "list.txt").write_text("\n".join(lines) + "\n")
    return folder
