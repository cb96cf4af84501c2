"""Measure test-time scale options on the validation split (the table in docs/diagnosis.md).

    python scripts/test_time_scales.py --out runs/scales \\
        shanghaitech_A=data/shanghaitech/part_A_train shanghaitech_B=data/shanghaitech/part_B_train \\
        mall=data/mall/train

Runs the packaged weights (fp32, threshold 0.5) once per image and scale (1.0, 0.75, 0.5; 1.5 on images
of at most 640 px), keeps every candidate above 0.2 in ``--out`` (a rerun reuses them), then prints per
option and dataset: MAE, mean signed error, F1@8 and the cost in pixels relative to scale 1.0.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.commands.evaluate import collect_items
from crowdwatch.data.folders import Item, load_image, load_points
from crowdwatch.data.scoring import count_errors, dataset_groups, matched_within, prf
from crowdwatch.model.multiscale import merge_scales, own_spacing
from crowdwatch.model.postprocess import Prediction
from crowdwatch.model.predictor import Predictor

SCALES = (1.0, 0.75, 0.5, 1.5)
UPSCALE_UP_TO = 640  # 1.5x only for images whose longest side is at most this


def key(item: Item) -> str:
    return f"{item.dataset}__{item.image.stem}"


def cache(predictor: Predictor, items: list[Item], scale: float, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n, item in enumerate(items):
        path = folder / f"{key(item)}.npz"
        image = load_image(item.image)
        h, w = image.shape[:2]
        if path.exists() or (scale > 1 and max(h, w) > UPSCALE_UP_TO):
            continue
        start = time.perf_counter()
        size = (round(w * scale), round(h * scale))
        resized = (
            image
            if scale == 1
            else cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        )
        found = predictor.predict([resized])[0]
        points = found.points.astype(np.float64) * [w / resized.shape[1], h / resized.shape[0]]
        seconds = time.perf_counter() - start
        np.savez(
            path,
            points=points.astype(np.float32),
            scores=found.scores,
            pixels=resized.shape[0] * resized.shape[1],
            seconds=seconds,
        )
        print(f"scale {scale:g} {n + 1}/{len(items)} {item.image.name} {seconds:.1f}s", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", metavar="[NAME=]FOLDER")
    parser.add_argument("--out", type=Path, required=True, help="folder for the cached candidates")
    args = parser.parse_args()
    items = collect_items(args.data, "val", 10)
    predictor = Predictor.from_checkpoint(None, precision="fp32", threshold=0.2)
    found: dict[float, dict[str, dict[str, np.ndarray]]] = {}
    for scale in SCALES:
        folder = args.out / f"scale_{scale:g}"
        cache(predictor, items, scale, folder)
        found[scale] = {f.stem: dict(np.load(f)) for f in folder.glob("*.npz")}

    def at(scale: float, item: Item, min_spacing: float = 0.0) -> Prediction:
        entry = found[scale].get(key(item)) or found[1.0][key(item)]
        keep = entry["scores"] > 0.5
        points, scores = entry["points"][keep], entry["scores"][keep]
        if min_spacing:
            sparse = own_spacing(points) >= min_spacing
            points, scores = points[sparse], scores[sparse]
        return Prediction(points=points, scores=scores)

    def pixels(scale: float, item: Item) -> float:
        entry = found[scale].get(key(item))
        return float(entry["pixels"]) if entry is not None else 0.0

    def second(item: Item, scale: float, spacing: float = 0.0) -> Prediction:
        return merge_scales([at(1.0, item), at(scale, item, spacing)])

    options: dict[str, tuple[Callable[[Item], Prediction], Callable[[Item], float]]] = {
        "plain, scale 1.0": (lambda i: at(1.0, i), lambda i: pixels(1.0, i)),
        "scale 0.5 alone": (lambda i: at(0.5, i), lambda i: pixels(0.5, i)),
        "scale 0.75 alone": (lambda i: at(0.75, i), lambda i: pixels(0.75, i)),
        "1.0 + 0.5, all merged": (lambda i: second(i, 0.5), lambda i: pixels(1.0, i) + pixels(0.5, i)),
        "1.0 + 0.5, 0.5's points >= 32 px apart": (
            lambda i: second(i, 0.5, 32),
            lambda i: pixels(1.0, i) + pixels(0.5, i),
        ),
        "1.0 + 0.75, 0.75's points >= 48 px apart": (
            lambda i: second(i, 0.75, 48),
            lambda i: pixels(1.0, i) + pixels(0.75, i),
        ),
        "1.5x instead of 1.0 for small images": (
            lambda i: at(1.5, i),
            lambda i: pixels(1.5, i) or pixels(1.0, i),
        ),
        "1.0 + 1.5x merged for small images": (
            lambda i: second(i, 1.5),
            lambda i: pixels(1.0, i) + pixels(1.5, i),
        ),
    }
    base = sum(pixels(1.0, i) for i in items)
    groups = dataset_groups([i.dataset for i in items])
    print("| option | " + " | ".join(f"{n} MAE | {n} bias | {n} F1@8" for n in groups) + " | pixels |")
    print("|---" * (2 + 3 * len(groups)) + "|")
    for name, (predict, cost) in options.items():
        cells = []
        for idx in groups.values():
            preds = [predict(items[j]) for j in idx]
            truth = [load_points(items[j].points) for j in idx]
            counts, gts = [p.count for p in preds], [len(t) for t in truth]
            tp = sum(matched_within(p.points, t, 8.0) for p, t in zip(preds, truth, strict=True))
            bias = float(np.mean(np.subtract(counts, gts)))
            cells += [
                f"{count_errors(counts, gts)['mae']:.2f}",
                f"{bias:+.2f}",
                f"{prf(tp, sum(counts), sum(gts))['f1']:.3f}",
            ]
        print(f"| {name} | " + " | ".join(cells) + f" | {sum(cost(i) for i in items) / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
