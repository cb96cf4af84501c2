"""``crowdwatch evaluate --weights W DATA...``: counting and localization accuracy on annotated folders.

Writes into ``--out``: ``per_image.csv`` (one row per image), ``summary.json`` (per dataset and over
all images: MAE, RMSE, precision / recall / F1 at each radius; with ``--sweep``, the same at each swept
threshold and the one with the lowest MAE over all images), ``worst/`` (overlays of the images with
the largest count errors: hits green, false positives red, misses blue) and, with ``--breakdown``,
``breakdown.json`` (recall and precision by head size, local density and image third, and the count
bias per dataset: :mod:`crowdwatch.data.breakdown`). The measuring is :mod:`crowdwatch.evaluation`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crowdwatch.commands.model_options import add_model_arguments, predictor_from_args
from crowdwatch.data.breakdown import breakdown, write_tables
from crowdwatch.data.folders import Item, dataset_names, read_folder, split_items
from crowdwatch.errors import UsageError
from crowdwatch.evaluation import (
    DEFAULT_RADII,
    best_threshold,
    mean_count_baseline,
    predict_items,
    scored,
    summarize,
    threshold_sweep,
    true_positives,
    write_per_image,
    write_sweep_table,
    write_worst,
)
from crowdwatch.images import DEFAULT_MAX_PIXELS

#: Options taking one or more numbers. argparse's ``nargs="+"`` would also take the positionals after
#: them (``--sweep 0.4 0.5 NAME=FOLDER``) for numbers; :func:`numbers_end_at_first_non_number` stops them.
NUMBER_LIST_OPTIONS = ("--radii", "--sweep")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def numbers_end_at_first_non_number(argv: Sequence[str]) -> list[str]:
    """``argv`` with each number-list option and its numbers moved to the end, so that the arguments
    after the numbers are parsed as what they are (positionals or other options) and not as numbers.

    ``--weights W --sweep 0.4 0.5 a=A`` becomes ``--weights W a=A --sweep 0.4 0.5``. An option with no
    number after it is left where it is; the moved options go before a ``--`` (after which everything
    is positional), and what follows ``--`` is left alone.
    """
    argv = list(argv)
    kept: list[str] = []
    moved: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest = argv[i:]
            break
        end = i + 1
        if token in NUMBER_LIST_OPTIONS:
            while end < len(argv) and _is_number(argv[end]):
                end += 1
        (moved if end > i + 1 else kept).extend(argv[i:end])
        i = end
    return kept + moved + rest


def parse_data_arg(arg: str) -> tuple[str | None, Path]:
    """``NAME=FOLDER`` or ``FOLDER`` (then the folder's name is the dataset's name)."""
    name, sep, path = arg.partition("=")
    return (name, Path(path)) if sep and name and "/" not in name else (None, Path(arg))


def collect_items(data: Sequence[str], split: str, every: int) -> list[Item]:
    items: list[Item] = []
    folders = [parse_data_arg(arg) for arg in data]
    try:
        names = dataset_names(folders)
    except ValueError as exc:
        raise UsageError(f"{exc} (NAME=FOLDER)") from None
    for name, (_, folder) in zip(names, folders, strict=True):
        items += split_items(read_folder(folder, name), every=every, part=split)
    if not items:
        raise UsageError(f"no images to evaluate in {', '.join(data)} (split {split!r})")
    return items


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch evaluate", description="Measure counting (MAE, RMSE) and localization (P/R/F1)."
    )
    parser.add_argument(
        "data",
        nargs="+",
        metavar="[NAME=]FOLDER",
        help="folders of <name>.jpg + <name>.txt (and list.txt); NAME labels the results",
    )
    parser.add_argument("--out", type=Path, help="output folder (default runs/evaluate/<weights name>)")
    parser.add_argument(
        "--split",
        choices=("all", "val", "train"),
        default="all",
        help="which images of each folder: all, or the training run's val/train split",
    )
    parser.add_argument("--val-every", type=int, default=10, help="the split rule: every n-th image is val")
    add_model_arguments(parser)
    parser.add_argument(
        "--radii",
        type=float,
        nargs="+",
        default=list(DEFAULT_RADII),
        help="localization radii in pixels (default 4 8)",
    )
    parser.add_argument(
        "--sweep",
        type=float,
        nargs="+",
        metavar="T",
        help="also report MAE, RMSE and F1 when counting at each of these thresholds, and the one "
        "with the lowest MAE over all images (to choose a threshold on a validation split)",
    )
    parser.add_argument(
        "--worst",
        type=int,
        default=8,
        help="overlays of this many worst images (matched at the largest radius: hits green, false "
        "positives red, misses blue)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also print and write (breakdown.json) recall and precision by head size, local density and "
        "image third, and the count bias per dataset, at the largest radius and one relative to head size",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse (exit 2) an image over N pixels, read from its header "
        f"(default: {DEFAULT_MAX_PIXELS:,})",
    )
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str]) -> int:
    """Entry point of ``crowdwatch evaluate``; returns the exit code."""
    args = build_parser().parse_args(numbers_end_at_first_non_number(argv))
    if args.weights is None and args.backend != "triton":
        raise UsageError("--weights is required: a checkpoint, or default (the packaged weights)")
    items = collect_items(args.data, args.split, args.val_every)
    sweep = sorted(set(args.sweep or []))
    predictor = predictor_from_args(args)  # heavy import (torch) after argument parsing
    model_name = args.weights.stem if args.weights is not None else f"triton-{args.model_name}"
    out = args.out or Path("runs") / "evaluate" / model_name
    out.mkdir(parents=True, exist_ok=True)
    results, swept = predict_items(
        predictor, items, sweep=sweep, progress=not args.no_progress, max_pixels=args.max_pixels
    )
    tps = [true_positives(r, args.radii) for r in results]
    summary = summarize(results, args.radii, tps)
    write_per_image(out / "per_image.csv", results, tps, args.radii)
    worst_dir = out / "worst"
    radius = max(args.radii)
    write_worst(worst_dir, items, results, args.worst, args.max_pixels, radius)
    report: dict[str, Any] = {
        "weights": str(args.weights) if args.weights is not None else f"{args.url} ({args.model_name})",
        "split": args.split,
        "val_every": args.val_every,
        "longest_side": args.longest_side,
        "tile_pixels": predictor.tile_pixels,
        "threshold": predictor.threshold,
        "backend": predictor.backend.name,
        "precision": predictor.precision,
        "device": str(predictor.device),
        "rmse_note": "RMSE = root of mean squared count error ('MSE' in papers)",
        "datasets": summary,
    }
    if sweep:
        # the checkpoint's own threshold, when swept too, is matched once: its summary is reused
        report["threshold_sweep"] = threshold_sweep(swept, args.radii, {predictor.threshold: summary})
        report["threshold_lowest_mae"] = best_threshold(report["threshold_sweep"])
    if args.split == "val":  # the trivial baseline any trained model must beat
        report["baseline_mean_count"] = mean_count_baseline(
            results, collect_items(args.data, "train", args.val_every)
        )
    (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    where = [out / "summary.json", out / "per_image.csv"]
    if args.breakdown:
        tables = breakdown([scored(r) for r in results], radius)
        (out / "breakdown.json").write_text(json.dumps(tables, indent=2) + "\n")
        where.append(out / "breakdown.json")
    for name, entry in summary.items():
        loc = ", ".join(f"F1@{k} {v['f1']:.3f}" for k, v in entry["localization"].items())
        sys.stdout.write(
            f"{name}: {entry['images']} images, MAE {entry['mae']:.2f}, RMSE {entry['rmse']:.2f}, {loc}\n"
        )
    for name, entry in report.get("baseline_mean_count", {}).items():
        sys.stdout.write(
            f"{name}: baseline (training mean count {entry['train_mean_count']:.1f}): "
            f"MAE {entry['mae']:.2f}, RMSE {entry['rmse']:.2f}\n"
        )
    if sweep:
        write_sweep_table(sys.stdout, report["threshold_sweep"], report["threshold_lowest_mae"])
    if args.breakdown:
        write_tables(sys.stdout, tables)
    sys.stdout.write(f"wrote {', '.join(str(p) for p in where)} and {worst_dir}/\n")
    return 0
