"""``crowdwatch evaluate --weights W DATA...``: counting and localization accuracy on annotated folders.

Writes into ``--out``: ``per_image.csv`` (one row per image), ``summary.json`` (per dataset and over
all images: MAE, RMSE, precision / recall / F1 at each radius) and ``worst/`` (overlays of the images
with the largest count errors: ground truth in green circles, predictions in red dots).

RMSE is what crowd-counting papers call "MSE" (the root of the mean squared count error). Localization
matches predicted to ground-truth points one-to-one within a radius in source-image pixels and sums
TP, predictions and ground truth over images before dividing (micro-average).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from crowdwatch.errors import UsageError
from crowdwatch.train.dataset import Item, load_image, load_points, read_folder, split_items
from crowdwatch.train.metrics import count_errors, dataset_groups, matched_within, prf

logger = logging.getLogger(__name__)

#: Localization radii in pixels reported by default.
DEFAULT_RADII = (4.0, 8.0)


@dataclasses.dataclass(frozen=True)
class ImageResult:
    """Ground truth and prediction for one image (points (K, 2) in source pixels)."""

    dataset: str
    name: str
    gt: np.ndarray
    pred: np.ndarray

    @property
    def abs_error(self) -> int:
        return abs(len(self.pred) - len(self.gt))


def true_positives(result: ImageResult, radii: Sequence[float]) -> dict[float, int]:
    return {r: matched_within(result.pred, result.gt, r) for r in radii}


def summarize(results: Sequence[ImageResult], radii: Sequence[float] = DEFAULT_RADII,
              tps: Sequence[dict[float, int]] | None = None) -> dict[str, dict]:
    """Metrics per dataset (sorted by name) and over all images ("all")."""
    if tps is None:
        tps = [true_positives(r, radii) for r in results]
    summary: dict[str, dict] = {}
    for name, idx in dataset_groups([r.dataset for r in results]).items():
        preds = [len(results[i].pred) for i in idx]
        gts = [len(results[i].gt) for i in idx]
        entry: dict = {"images": len(idx), "gt_total": int(sum(gts)), "pred_total": int(sum(preds)),
                       **count_errors(preds, gts), "localization": {}}
        for radius in radii:
            tp = sum(tps[i][radius] for i in idx)
            entry["localization"][f"{radius:g}px"] = {"tp": tp, **prf(tp, sum(preds), sum(gts))}
        summary[name] = entry
    return summary


def mean_count_baseline(results: Sequence[ImageResult], train_items: Sequence[Item]) -> dict[str, dict]:
    """Per dataset: MAE / RMSE of always predicting the mean count of that dataset's training split."""
    baseline: dict[str, dict] = {}
    for name in sorted({r.dataset for r in results}):
        counts = [len(load_points(i.points)) for i in train_items if i.dataset == name]
        if not counts:
            continue
        mean = float(np.mean(counts))
        truth = [len(r.gt) for r in results if r.dataset == name]
        baseline[name] = {"train_mean_count": mean, "train_images": len(counts),
                          **count_errors([mean] * len(truth), truth)}
    return baseline


def threshold_sweep(results: Sequence[ImageResult], thresholds: Sequence[float],
                    counts: Sequence[Sequence[int]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per threshold, per dataset and "all": count MAE / RMSE when counting at that threshold."""
    sweep: dict[str, dict[str, dict[str, float]]] = {}
    groups = dataset_groups([r.dataset for r in results])
    for j, t in enumerate(thresholds):
        sweep[f"{t:g}"] = {}
        for name, idx in groups.items():
            truth = [len(results[i].gt) for i in idx]
            sweep[f"{t:g}"][name] = count_errors([counts[i][j] for i in idx], truth)
    return sweep


def draw_overlay(image: np.ndarray, result: ImageResult) -> np.ndarray:
    """A copy of ``image`` with ground truth (green circles) and predictions (red dots) drawn."""
    canvas = image.copy()
    for x, y in result.gt:
        cv2.circle(canvas, (int(round(x)), int(round(y))), 5, (0, 200, 0), 1, cv2.LINE_AA)
    for x, y in result.pred:
        cv2.circle(canvas, (int(round(x)), int(round(y))), 2, (0, 0, 255), -1, cv2.LINE_AA)
    text = f"{result.name}: predicted {len(result.pred)}, true {len(result.gt)}"
    cv2.putText(canvas, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def write_per_image(path: Path, results: Sequence[ImageResult], tps: Sequence[dict[float, int]],
                    radii: Sequence[float]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "image", "gt_count", "pred_count", "abs_error"]
                        + [f"tp_{r:g}px" for r in radii])
        for result, tp in zip(results, tps):
            writer.writerow([result.dataset, result.name, len(result.gt), len(result.pred), result.abs_error]
                            + [tp[r] for r in radii])


def parse_data_arg(arg: str) -> tuple[str | None, Path]:
    """``NAME=FOLDER`` or ``FOLDER`` (then the folder's name is the dataset's name)."""
    name, sep, path = arg.partition("=")
    return (name, Path(path)) if sep and name and "/" not in name else (None, Path(arg))


def collect_items(data: Sequence[str], split: str, every: int) -> list[Item]:
    items: list[Item] = []
    names: set[str] = set()
    for arg in data:
        given, folder = parse_data_arg(arg)
        name = given or folder.name
        while name in names:  # two folders with the same base name: keep them apart
            name += "_"
        names.add(name)
        items += split_items(read_folder(folder, name), every=every, part=split)
    if not items:
        raise UsageError(f"no images to evaluate in {', '.join(data)} (split {split!r})")
    return items


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crowdwatch evaluate",
                                     description="Measure counting (MAE, RMSE) and localization (P/R/F1).")
    parser.add_argument("data", nargs="+", metavar="[NAME=]FOLDER",
                        help="folders of <name>.jpg + <name>.txt (and list.txt); NAME labels the results")
    parser.add_argument("--weights", type=Path, required=True, help="crowdwatch checkpoint")
    parser.add_argument("--out", type=Path, help="output folder (default runs/evaluate/<weights name>)")
    parser.add_argument("--split", choices=("all", "val", "train"), default="all",
                        help="which images of each folder: all, or the training run's val/train split")
    parser.add_argument("--val-every", type=int, default=10, help="the split rule: every n-th image is val")
    parser.add_argument("--longest-side", type=int, help="shrink images to this longest side first")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    parser.add_argument("--threshold", type=float, help="score threshold (default: the checkpoint's)")
    parser.add_argument("--radii", type=float, nargs="+", default=list(DEFAULT_RADII),
                        help="localization radii in pixels (default 4 8)")
    parser.add_argument("--sweep", type=float, nargs="+", metavar="T",
                        help="also report MAE/RMSE when counting at each of these thresholds (to choose one "
                             "on a validation split)")
    parser.add_argument("--worst", type=int, default=8, help="overlays of this many worst images")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def evaluate_command(argv: list[str]) -> int:
    """Entry point of ``crowdwatch evaluate``; returns the exit code."""
    args = build_parser().parse_args(argv)
    from crowdwatch.model.predictor import Predictor  # heavy import after argument parsing

    items = collect_items(args.data, args.split, args.val_every)
    sweep = sorted(set(args.sweep or []))
    predictor = Predictor.from_checkpoint(args.weights, device=args.device, precision=args.precision,
                                          threshold=args.threshold, longest_side=args.longest_side)
    threshold = predictor.threshold
    if sweep:  # decode at the lowest threshold; each higher one is a filter on the scores
        predictor.threshold = min(sweep[0], threshold)
    out = args.out or Path("runs") / "evaluate" / args.weights.stem
    out.mkdir(parents=True, exist_ok=True)
    results: list[ImageResult] = []
    sweep_counts: list[list[int]] = []
    for item in tqdm(items, desc="evaluate", unit="img", disable=args.no_progress):
        image, gt = load_image(item.image), load_points(item.points)
        pred = predictor.predict([image])[0]
        sweep_counts.append([int((pred.scores > t).sum()) for t in sweep])
        results.append(ImageResult(item.dataset, item.image.name, gt, pred.points[pred.scores > threshold]))
    tps = [true_positives(r, args.radii) for r in results]
    summary = summarize(results, args.radii, tps)
    write_per_image(out / "per_image.csv", results, tps, args.radii)
    worst_dir = out / "worst"
    worst_dir.mkdir(exist_ok=True)
    by_error = sorted(range(len(results)), key=lambda i: -results[i].abs_error)[: max(args.worst, 0)]
    for rank, i in enumerate(by_error, start=1):
        overlay = draw_overlay(load_image(items[i].image), results[i])
        cv2.imwrite(str(worst_dir / f"{rank:02d}_{items[i].dataset}_{items[i].image.stem}.jpg"), overlay)
    report = {
        "weights": str(args.weights), "split": args.split, "val_every": args.val_every,
        "longest_side": args.longest_side, "threshold": threshold, "precision": predictor.precision,
        "device": str(predictor.device),
        "rmse_note": "RMSE = root of mean squared count error ('MSE' in papers)",
        "datasets": summary,
    }
    if sweep:
        report["threshold_sweep"] = threshold_sweep(results, sweep, sweep_counts)
    if args.split == "val":  # the trivial baseline any trained model must beat
        report["baseline_mean_count"] = mean_count_baseline(
            results, collect_items(args.data, "train", args.val_every))
    (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    for name, entry in summary.items():
        loc = ", ".join(f"F1@{k} {v['f1']:.3f}" for k, v in entry["localization"].items())
        sys.stdout.write(
            f"{name}: {entry['images']} images, MAE {entry['mae']:.2f}, RMSE {entry['rmse']:.2f}, {loc}\n"
        )
    for name, entry in report.get("baseline_mean_count", {}).items():
        sys.stdout.write(f"{name}: baseline (training mean count {entry['train_mean_count']:.1f}): "
                         f"MAE {entry['mae']:.2f}, RMSE {entry['rmse']:.2f}\n")
    sys.stdout.write(f"wrote {out / 'summary.json'}, {out / 'per_image.csv'} and {worst_dir}/\n")
    return 0

