"""Counting and localization accuracy of weights on annotated images (``crowdwatch evaluate`` is
:mod:`crowdwatch.commands.evaluate`).

Per image an :class:`ImageResult`; from those a summary per dataset and over all images (MAE, RMSE,
precision / recall / F1 at each radius), a threshold sweep, the mean-count baseline, the per-image CSV
and overlays of the worst images (hits green, false positives red, misses blue, with a legend).

RMSE is what crowd-counting papers call "MSE" (the root of the mean squared count error). Localization
matches predicted to ground-truth points one-to-one within a radius in source-image pixels and sums
TP, predictions and ground truth over images before dividing (micro-average).
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import cv2
import numpy as np
from tqdm import tqdm

from crowdwatch.data.breakdown import Scored
from crowdwatch.data.folders import Item, load_image, load_points
from crowdwatch.data.scoring import count_errors, dataset_groups, match_pairs, matched_within, prf
from crowdwatch.images import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:  # torch loads only when a command has parsed its arguments and builds a Predictor
    from crowdwatch.model.predictor import Predictor

logger = logging.getLogger(__name__)

#: Localization radii in pixels reported by default.
DEFAULT_RADII = (4.0, 8.0)
#: Overlay colours (BGR): a prediction matched to a head, a prediction matched to none, a head missed.
HIT_COLOR = (0, 200, 0)
FALSE_POSITIVE_COLOR = (0, 0, 255)
MISS_COLOR = (255, 64, 0)


@dataclasses.dataclass(frozen=True)
class ImageResult:
    """Ground truth and prediction for one image (points (K, 2) in source pixels); ``height`` in pixels
    (0 when unknown: the breakdown then takes the lowest point as the image's bottom)."""

    dataset: str
    name: str
    gt: np.ndarray
    pred: np.ndarray
    height: int = 0

    @property
    def abs_error(self) -> int:
        return abs(len(self.pred) - len(self.gt))


def predict_items(
    predictor: Predictor,
    items: Sequence[Item],
    *,
    sweep: Sequence[float] = (),
    progress: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[list[ImageResult], dict[float, list[ImageResult]]]:
    """Count every item with ``predictor`` at its threshold, and again at each ``sweep`` threshold.

    Returns one :class:`ImageResult` per item at the predictor's threshold and, per ``sweep``
    threshold, one per item counted at that threshold (from the same forward pass).
    """
    threshold = predictor.threshold
    results: list[ImageResult] = []
    swept: dict[float, list[ImageResult]] = {t: [] for t in sorted(sweep)}
    if swept:  # decode at the lowest threshold; each higher one is a filter on the scores
        predictor.threshold = min(min(swept), threshold)
    try:
        for item in tqdm(items, desc="evaluate", unit="img", disable=not progress):
            image, gt = load_image(item.image, max_pixels), load_points(item.points)
            pred = predictor.predict([image])[0]
            name, height = item.image.name, image.shape[0]
            for t, at_t in swept.items():
                at_t.append(ImageResult(item.dataset, name, gt, pred.points[pred.scores > t], height))
            results.append(ImageResult(item.dataset, name, gt, pred.points[pred.scores > threshold], height))
    finally:
        predictor.threshold = threshold
    return results, swept


def true_positives(result: ImageResult, radii: Sequence[float]) -> dict[float, int]:
    return {r: matched_within(result.pred, result.gt, r) for r in radii}


def summarize(
    results: Sequence[ImageResult],
    radii: Sequence[float] = DEFAULT_RADII,
    tps: Sequence[dict[float, int]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics per dataset (sorted by name) and over all images ("all")."""
    if tps is None:
        tps = [true_positives(r, radii) for r in results]
    summary: dict[str, dict[str, Any]] = {}
    for name, idx in dataset_groups([r.dataset for r in results]).items():
        preds = [len(results[i].pred) for i in idx]
        gts = [len(results[i].gt) for i in idx]
        entry: dict[str, Any] = {
            "images": len(idx),
            "gt_total": int(sum(gts)),
            "pred_total": int(sum(preds)),
            **count_errors(preds, gts),
            "localization": {},
        }
        for radius in radii:
            tp = sum(tps[i][radius] for i in idx)
            entry["localization"][f"{radius:g}px"] = {"tp": tp, **prf(tp, sum(preds), sum(gts))}
        summary[name] = entry
    return summary


def mean_count_baseline(
    results: Sequence[ImageResult], train_items: Sequence[Item]
) -> dict[str, dict[str, Any]]:
    """Per dataset: MAE / RMSE of always predicting the mean count of that dataset's training split."""
    baseline: dict[str, dict[str, Any]] = {}
    for name in sorted({r.dataset for r in results}):
        counts = [len(load_points(i.points)) for i in train_items if i.dataset == name]
        if not counts:
            continue
        mean = float(np.mean(counts))
        truth = [len(r.gt) for r in results if r.dataset == name]
        baseline[name] = {
            "train_mean_count": mean,
            "train_images": len(counts),
            **count_errors([mean] * len(truth), truth),
        }
    return baseline


def threshold_sweep(
    swept: Mapping[float, Sequence[ImageResult]],
    radii: Sequence[float] = DEFAULT_RADII,
    summarized: Mapping[float, dict[str, dict[str, Any]]] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per threshold (keyed ``f"{t:g}"``): :func:`summarize` of the results counted at that threshold.

    ``summarized``: summaries already made at some of the thresholds (at the same ``radii``), reused
    instead of matching those points again.
    """
    done = summarized or {}
    return {
        f"{t:g}": done[t] if t in done else summarize(results, radii) for t, results in sorted(swept.items())
    }


def best_threshold(sweep: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """The swept threshold with the lowest count MAE over all images (the lowest threshold on a tie)."""
    return min(sweep, key=lambda t: (sweep[t]["all"]["mae"], float(t)))


def write_sweep_table(out: TextIO, sweep: Mapping[str, Mapping[str, Mapping[str, Any]]], lowest: str) -> None:
    """The sweep as a text table: per threshold and dataset, count MAE and F1 at the largest radius."""
    if not sweep:
        return
    first = next(iter(sweep.values()))
    names = ["all", *sorted(n for n in first if n != "all")]
    radius = list(first["all"]["localization"])[-1]
    width = max(14, *(len(n) for n in names))
    out.write(f"threshold sweep: count MAE / F1@{radius} (lowest MAE over all images at {lowest})\n")
    out.write("threshold " + "".join(f"{n:>{width + 2}}" for n in names) + "\n")
    for t, per_dataset in sweep.items():
        cells = [
            f"{per_dataset[n]['mae']:.2f} / {per_dataset[n]['localization'][radius]['f1']:.3f}" for n in names
        ]
        out.write(f"{t:<10}" + "".join(f"{c:>{width + 2}}" for c in cells) + "\n")


def scored(result: ImageResult) -> Scored:
    """``result`` as :func:`crowdwatch.data.breakdown.breakdown` takes it."""
    height = result.height
    if height <= 0:
        ys = np.concatenate([result.gt[:, 1], result.pred[:, 1]])
        height = int(np.ceil(ys.max())) + 1 if len(ys) else 1
    return Scored(result.dataset, result.gt, result.pred, height)


def draw_overlay(image: np.ndarray, result: ImageResult, radius: float = DEFAULT_RADII[-1]) -> np.ndarray:
    """A copy of ``image`` with the predictions and ground truth matched one-to-one within ``radius``
    (as F1 at that radius): hits (matched predictions) as green dots, false positives as red dots,
    missed heads as blue rings; the counts and a legend of the colours in the top-left corner."""
    canvas = image.copy()
    pred_idx, gt_idx = match_pairs(result.pred, result.gt, radius)
    hit = np.zeros(len(result.pred), dtype=bool)
    hit[pred_idx] = True
    missed = np.ones(len(result.gt), dtype=bool)
    missed[gt_idx] = False
    size = max(2, round(min(canvas.shape[:2]) / 250))  # dots stay visible on large images
    for x, y in result.gt[missed]:
        cv2.circle(canvas, (round(x), round(y)), size + 2, MISS_COLOR, max(2, size // 2), cv2.LINE_AA)
    for (x, y), is_hit in zip(result.pred, hit, strict=True):
        color = HIT_COLOR if is_hit else FALSE_POSITIVE_COLOR
        cv2.circle(canvas, (round(x), round(y)), size, color, -1, cv2.LINE_AA)
    scale = max(0.45, min(canvas.shape[:2]) / 900)
    line = round(30 * scale / 0.6)
    lines = [
        (f"{result.name}: predicted {len(result.pred)}, true {len(result.gt)}", (255, 255, 255)),
        (f"hit within {radius:g} px: {int(hit.sum())}", HIT_COLOR),
        (f"false positive: {int((~hit).sum())}", FALSE_POSITIVE_COLOR),
        (f"missed head: {int(missed.sum())}", MISS_COLOR),
    ]
    thickness = max(1, round(scale * 2))
    width = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] for t, _ in lines)
    cv2.rectangle(canvas, (0, 0), (width + 16, line * len(lines) + 8), (40, 40, 40), -1)
    for row, (text, color) in enumerate(lines):
        origin = (8, line * (row + 1) - 4)
        cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)
    return canvas


def write_per_image(
    path: Path, results: Sequence[ImageResult], tps: Sequence[dict[float, int]], radii: Sequence[float]
) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["dataset", "image", "gt_count", "pred_count", "abs_error"] + [f"tp_{r:g}px" for r in radii]
        )
        for result, tp in zip(results, tps, strict=True):
            writer.writerow(
                [result.dataset, result.name, len(result.gt), len(result.pred), result.abs_error]
                + [tp[r] for r in radii]
            )


def write_worst(
    folder: Path,
    items: Sequence[Item],
    results: Sequence[ImageResult],
    count: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    radius: float = DEFAULT_RADII[-1],
) -> None:
    """Overlays of the ``count`` images with the largest count errors, as ``<rank>_<dataset>_<stem>.jpg``
    (points coloured by the matching within ``radius``: see :func:`draw_overlay`)."""
    folder.mkdir(exist_ok=True)
    by_error = sorted(range(len(results)), key=lambda i: -results[i].abs_error)[: max(count, 0)]
    for rank, i in enumerate(by_error, start=1):
        overlay = draw_overlay(load_image(items[i].image, max_pixels), results[i], radius)
        cv2.imwrite(str(folder / f"{rank:02d}_{items[i].dataset}_{items[i].image.stem}.jpg"), overlay)
