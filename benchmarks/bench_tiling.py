"""Large images: counts on tiles against the whole image, and the peak memory of ``crowdwatch count``.

    python benchmarks/bench_tiling.py accuracy ../shared/data/shanghaitech/part_A_train
    python benchmarks/bench_tiling.py memory ../shared/data/shanghaitech/part_A_train/IMG_1.jpg

``accuracy`` runs the packaged weights (fp32, CPU) on the validation split (every ``--val-every``-th
image) twice: whole, and in tiles. Two settings of tiles: ``--tile-side`` px tiles with each of
``--margins`` on the images as they are (many seams through dense crowds), and the default tiles on the
first ``--upscaled`` images upscaled ``--scale`` times (so that they are over the default budget, as a
big photo is). For each it prints the mean and largest absolute count difference from the whole image,
the share of the whole image's points that the tiles found within 1 px, and MAE and F1 at 8 px against
the ground truth for both.

``memory`` upscales one real image to 4, 16 and 48 MP (JPEGs in a temporary folder, deleted after),
runs ``python -m crowdwatch count`` on each under ``/usr/bin/time -v`` and prints the peak resident
memory: with the default tiles, and with the whole image in one pass (``--tile-pixels`` over the image's
size) up to ``--whole-up-to`` MP; for larger sizes the whole-image figure is extrapolated from a
straight line through the measured ones, and marked so. ``--limit-s`` stops a count that runs longer
(48 MP on a slow or busy CPU) and reports its peak so far, marked ``stopped_after_s``. Both print the
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from crowdwatch.data.folders import Item, load_points, read_folder, split_items
from crowdwatch.data.scoring import matched_within, prf
from crowdwatch.images import read_image
from crowdwatch.model.precision import machine_description
from crowdwatch.model.predictor import Predictor
from crowdwatch.model.tiling import DEFAULT_TILE_MARGIN, DEFAULT_TILE_PIXELS

TIME = "/usr/bin/time"
#: Synthetic sizes for ``memory`` (4:3, as cameras' photos): about 4, 16 and 48 MP.
SIZES = {"4MP": (2304, 1728), "16MP": (4608, 3456), "48MP": (8000, 6000)}
WHOLE = 10**9  # --tile-pixels larger than any image: the whole image in one pass


def cpu_name() -> str:
    """The CPU as lscpu names it, with the core count (machine_description reads /proc/cpuinfo)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        name = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), ""
        )
    except OSError:
        name = ""
    return f"{name}, {os.cpu_count()} cores" if name else machine_description(torch.device("cpu"))


def compare(whole: Predictor, tiled: Predictor, items: Sequence[Item], scale: float = 1.0) -> dict[str, Any]:
    """Counts and F1 at 8 px of ``tiled`` against ``whole`` on ``items`` (each upscaled ``scale`` times)."""
    diffs, same, total_whole = [], 0, 0
    counts: dict[str, list[int]] = {"whole": [], "tiled": [], "gt": []}
    tp: dict[str, int] = {"whole": 0, "tiled": 0}
    for item in items:
        image, gt = read_image(item.image), load_points(item.points) * scale
        if scale != 1.0:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
        w, t = whole.predict([image])[0], tiled.predict([image])[0]
        diffs.append(abs(t.count - w.count))
        same += matched_within(t.points, w.points, 1.0)
        total_whole += w.count
        for name, pred in (("whole", w), ("tiled", t)):
            tp[name] += matched_within(pred.points, gt, 8.0)
            counts[name].append(pred.count)
        counts["gt"].append(len(gt))
        print(
            f"  {item.image.name} x{scale:g}: gt {len(gt)}, whole {w.count}, tiled {t.count}", file=sys.stderr
        )
    gt_counts = np.array(counts["gt"], dtype=float)
    report: dict[str, Any] = {
        "images": len(items),
        "mean_gt": round(float(gt_counts.mean()), 1),
        "count_diff_mean": round(float(np.mean(diffs)), 3),
        "count_diff_max": int(max(diffs)),
        "points_within_1px": round(same / total_whole, 4) if total_whole else 1.0,
    }
    for name in ("whole", "tiled"):
        pred_counts = np.array(counts[name], dtype=float)
        report[f"mae_{name}"] = round(float(np.abs(pred_counts - gt_counts).mean()), 2)
        report[f"f1_8px_{name}"] = round(prf(tp[name], int(pred_counts.sum()), int(gt_counts.sum()))["f1"], 4)
    return report


def accuracy(args: argparse.Namespace) -> dict[str, Any]:
    items: list[Item] = []
    for folder in args.folders:
        items += split_items(read_folder(folder), every=args.val_every, part="val")
    whole = Predictor.from_checkpoint(device="cpu", precision="fp32", tile_pixels=WHOLE)
    settings: dict[str, Any] = {}
    for margin in args.margins:
        tiled = Predictor(
            whole.net, whole.meta, precision="fp32", tile_pixels=args.tile_side**2, tile_margin=margin
        )
        key = f"tiles {args.tile_side}px, margin {margin}, images as they are"
        settings[key] = compare(whole, tiled, items)
        print(f"{key}: {settings[key]}", file=sys.stderr)
    if args.upscaled:
        tiled = Predictor(whole.net, whole.meta, precision="fp32")
        key = (
            f"default tiles ({DEFAULT_TILE_PIXELS:,} px, margin {DEFAULT_TILE_MARGIN}), "
            f"images upscaled x{args.scale:g}"
        )
        settings[key] = compare(whole, tiled, items[: args.upscaled], scale=args.scale)
        print(f"{key}: {settings[key]}", file=sys.stderr)
    return {"weights": "packaged", "precision": "fp32", "settings": settings}


def peak_rss_mb(image: Path, tile_pixels: int | None, limit_s: float | None) -> dict[str, Any]:
    """Peak RSS of ``crowdwatch count IMAGE`` in MB and the count it printed. After ``limit_s`` seconds
    the count is stopped (SIGTERM) and the peak so far is reported, with ``"stopped_after_s"``: every
    tile runs within the same budget, so the first tiles reach the peak that all of them reach."""
    argv = [TIME, "-v", sys.executable, "-m", "crowdwatch", "count", str(image)]
    if tile_pixels is not None:
        argv += ["--tile-pixels", str(tile_pixels)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped = False
    try:
        out, err = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        # GNU time's child is the count; time itself reports the child's peak once it has ended
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        for child in children:
            os.kill(int(child), signal.SIGTERM)
        out, err = proc.communicate()
        stopped = True
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    if rss is None or (proc.returncode != 0 and not stopped):
        raise RuntimeError(f"count failed on {image} (exit {proc.returncode}): {err[-2000:]}")
    result: dict[str, Any] = {"peak_mb": round(int(rss.group(1)) / 1024, 1)}
    if stopped:
        result["stopped_after_s"] = limit_s
    else:
        result["count"] = int(out.split("\t")[0])
    return result


def memory(args: argparse.Namespace) -> dict[str, Any]:
    source = read_image(args.image)
    rows: dict[str, dict[str, Any]] = {}
    whole_fit: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.sizes:
            width, height = SIZES[label]
            path = Path(tmp) / f"{width}x{height}.jpg"
            big = cv2.resize(source, (width, height), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
            del big
            mp = width * height / 1e6
            row: dict[str, Any] = {
                "size": f"{width}x{height}",
                "tiled": peak_rss_mb(path, None, args.limit_s),
            }
            if mp <= args.whole_up_to:
                row["whole"] = peak_rss_mb(path, WHOLE, args.limit_s)
                whole_fit.append((mp, row["whole"]["peak_mb"]))
            rows[label] = row
            print(f"  {label}: {row}", file=sys.stderr)
    if len(whole_fit) >= 2:
        sizes, peaks = (np.array(values, np.float64) for values in zip(*whole_fit, strict=True))
        slope, base = np.polyfit(sizes, peaks, deg=1)
        for label in args.sizes:
            width, height = SIZES[label]
            if "whole" not in rows[label]:
                rows[label]["whole_peak_mb_extrapolated"] = round(base + slope * width * height / 1e6, 0)
    return {"image": str(args.image), "default_tile_pixels": DEFAULT_TILE_PIXELS, "peak_rss": rows}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    acc = sub.add_parser("accuracy", help="counts and F1 on tiles against the whole image")
    acc.add_argument("folders", nargs="+", type=Path)
    acc.add_argument("--val-every", type=int, default=10)
    acc.add_argument("--tile-side", type=int, default=512)
    acc.add_argument("--margins", type=int, nargs="*", default=[32, 64, DEFAULT_TILE_MARGIN])
    acc.add_argument("--upscaled", type=int, default=6, help="how many images to upscale (0: none)")
    acc.add_argument("--scale", type=float, default=2.5)
    mem = sub.add_parser("memory", help="peak RSS of crowdwatch count at 4, 16 and 48 MP")
    mem.add_argument("image", type=Path, help="a real image to upscale")
    mem.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    mem.add_argument(
        "--whole-up-to", type=float, default=16.0, metavar="MP", help="the whole image in one pass up to here"
    )
    mem.add_argument(
        "--limit-s",
        type=float,
        default=None,
        help="stop each count after this long and report its peak so far",
    )
    args = parser.parse_args(argv)
    if args.what == "memory" and not os.access(TIME, os.X_OK):
        print(f"{TIME} (GNU time) is needed: apt-get install time", file=sys.stderr)
        return 2
    report = accuracy(args) if args.what == "accuracy" else memory(args)
    print(json.dumps({"machine": cpu_name(), "torch_threads": torch.get_num_threads(), **report}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
