#!/usr/bin/env python3
"""Shrink point-annotated image folders so that they travel in little space (e.g. to a GPU machine).

Every image is resized by --scale (INTER_AREA) and re-encoded as WebP; its head points are scaled to
match. File stems, and so the sorted order and crowdwatch's fixed validation split, are unchanged.
With --train-only N the copy leaves out the validation images of ``val_every: N`` (every N-th image
of the sorted folder) and holds the training split alone: train on it with ``val_every: 0``, so that
none of the held-out images is trained on, and validate against the original folders.
A training config that uses the shrunk copies should divide its ``train.scale`` range by --scale, so
that the crops show heads at the sizes the original images would have given.

    scripts/shrink_data.py --scale 0.75 --quality 60 --out .gpu/data \\
        shanghaitech_a=../shared/data/shanghaitech/part_A_train \\
        shanghaitech_b=../shared/data/shanghaitech/part_B_train mall=../shared/data/mall/train
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from crowdwatch.data.folders import load_image, load_points, read_folder, split_items


def shrink_folder(src: Path, dst: Path, name: str, scale: float, quality: int, train_only: int = 0) -> int:
    items = read_folder(src, name)
    if train_only:
        items = split_items(items, every=train_only, part="train")
    dst.mkdir(parents=True, exist_ok=True)
    lines = []
    for item in tqdm(items, desc=name, unit="img"):
        image, points = load_image(item.image), load_points(item.points)
        h, w = image.shape[:2]
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        stem = item.image.stem
        if not cv2.imwrite(str(dst / f"{stem}.webp"), small, [cv2.IMWRITE_WEBP_QUALITY, quality]):
            raise SystemExit(f"cannot write {dst / f'{stem}.webp'}")
        points = points * np.array((nw / w, nh / h), np.float32)
        (dst / f"{stem}.txt").write_text("".join(f"{x:.2f} {y:.2f}\n" for x, y in points))
        lines.append(f"{stem}.webp {stem}.txt")
    (dst / "list.txt").write_text("\n".join(lines) + "\n")
    return len(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", metavar="NAME=FOLDER")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scale", type=float, default=0.75)
    parser.add_argument("--quality", type=int, default=60, help="WebP quality, 1-100")
    parser.add_argument(
        "--train-only",
        type=int,
        default=0,
        metavar="N",
        help="leave out the validation images of val_every: N (train on the copy with val_every: 0)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1 or not 1 <= args.quality <= 100 or args.train_only < 0:
        parser.error("--scale must be in (0, 1], --quality in 1..100 and --train-only >= 0")
    for spec in args.folders:
        name, sep, folder = spec.partition("=")
        if not sep:
            parser.error(f"expected NAME=FOLDER, got {spec!r}")
        n = shrink_folder(Path(folder), args.out / name, name, args.scale, args.quality, args.train_only)
        print(f"{name}: {n} images -> {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
