"""Where a model misses: recall and precision broken down by head size, local density and image region,
and the count bias per dataset (``crowdwatch evaluate --breakdown``).

Every ground-truth head gets a bin from its own annotation: its *size* (the mean distance to its
:data:`SIZE_NEIGHBOURS` nearest annotated neighbours, the usual proxy for head size in crowd images;
a lone head counts as the largest), its *local density* (annotated heads within
:data:`DENSITY_RADIUS` px, itself included, per 10,000 px²) and its *region* (the top, middle or
bottom third of the image). Recall per bin is the share of its heads that were matched. A prediction
takes the bin of the ground-truth head it matched; an unmatched one takes the size of the nearest
ground-truth head, and the density and region at its own position. Precision per bin is the share of
its predictions that matched.

Matching is one-to-one (:func:`crowdwatch.data.scoring.match_pairs`) at two radii: the fixed
``radius`` (8 px, as F1@8) and one relative to head size, ``clip(size / 2, radius, MAX_RELATIVE_RADIUS)``,
which is never stricter than the fixed one and is more lenient only for heads larger than
``2 * radius``: it tells a big head found a little off-centre from a big head missed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np
from scipy.spatial import cKDTree

from crowdwatch.data.scoring import dataset_groups, match_pairs, prf

#: Head size proxy: the mean distance to this many nearest annotated neighbours (pixels).
SIZE_NEIGHBOURS = 3
#: Head-size bin edges in pixels: < 8, 8-16, 16-32, 32-64, >= 64.
SIZE_EDGES = (8.0, 16.0, 32.0, 64.0)
#: Local density counts the annotated heads within this many pixels of a head (an area of ~10,000 px²).
DENSITY_RADIUS = 56.4
#: Density bin edges in heads per 10,000 px² (the head itself included): < 2, 2-5, 5-10, 10-20, >= 20.
DENSITY_EDGES = (2.0, 5.0, 10.0, 20.0)
REGIONS = ("top", "middle", "bottom")
#: The relative radius is half the head size, clipped to [fixed radius, this].
MAX_RELATIVE_RADIUS = 32.0


@dataclasses.dataclass(frozen=True)
class Scored:
    """One image to break down: ground truth and predictions (K, 2) in pixels, and the image height."""

    dataset: str
    gt: np.ndarray
    pred: np.ndarray
    height: int


def bin_labels(edges: Sequence[float], unit: str = "") -> list[str]:
    """``(8, 16)`` -> ``["<8", "8-16", ">=16"]``, each with ``unit`` appended."""
    labels = [f"<{edges[0]:g}{unit}"]
    labels += [f"{lo:g}-{hi:g}{unit}" for lo, hi in itertools.pairwise(edges)]
    return [*labels, f">={edges[-1]:g}{unit}"]


def head_sizes(points: np.ndarray, neighbours: int = SIZE_NEIGHBOURS) -> np.ndarray:
    """Per point, the mean distance to its ``neighbours`` nearest other points (fewer if the image has
    fewer; ``inf`` for a lone point)."""
    n = len(points)
    if n < 2:
        return np.full(n, math.inf)
    k = min(neighbours, n - 1)
    distance, _ = cKDTree(points.astype(np.float64)).query(points.astype(np.float64), k=k + 1)
    return np.asarray(distance[:, 1:].mean(axis=1), dtype=np.float64)


def local_density(at: np.ndarray, heads: np.ndarray, radius: float = DENSITY_RADIUS) -> np.ndarray:
    """Per point of ``at``, the heads of ``heads`` within ``radius`` pixels, per 10,000 px²."""
    if len(at) == 0:
        return np.zeros(0)
    if len(heads) == 0:
        return np.zeros(len(at))
    tree = cKDTree(heads.astype(np.float64))
    found = tree.query_ball_point(at.astype(np.float64), r=radius, return_length=True)
    return np.asarray(found, dtype=np.float64) * (10_000.0 / (math.pi * radius**2))


def relative_radii(sizes: np.ndarray, radius: float, cap: float = MAX_RELATIVE_RADIUS) -> np.ndarray:
    """Per ground-truth head, the matching radius relative to its size: ``clip(size / 2, radius, cap)``."""
    return np.clip(sizes / 2.0, radius, max(cap, radius))


def region_bins(points: np.ndarray, height: int) -> np.ndarray:
    """0, 1 or 2: the top, middle or bottom third of an image ``height`` pixels high."""
    return (
        np.clip((points[:, 1] * 3 / max(height, 1)).astype(np.intp), 0, 2)
        if len(points)
        else np.zeros(0, np.intp)
    )


KEYS = ("size", "density", "region")
LABELS = {
    "size": bin_labels(SIZE_EDGES, " px"),
    "density": bin_labels(DENSITY_EDGES),
    "region": list(REGIONS),
}


def point_bins(image: Scored, sizes: np.ndarray, points: np.ndarray) -> dict[str, np.ndarray]:
    """Per key, the bin of each of ``points`` in ``image`` (``sizes``: :func:`head_sizes` of its ground
    truth): size of the nearest ground-truth head (a lone head's when there is none), and the ground-truth
    density and the region at the point itself."""
    if len(points) and len(image.gt):
        nearest = cKDTree(image.gt.astype(np.float64)).query(points.astype(np.float64))[1]
        size = sizes[np.asarray(nearest, dtype=np.intp)]
    else:
        size = np.full(len(points), math.inf)
    return {
        "size": np.digitize(size, SIZE_EDGES),
        "density": np.digitize(local_density(points, image.gt), DENSITY_EDGES),
        "region": region_bins(points, image.height),
    }


def _tally(
    counts: dict[str, np.ndarray],
    gt_bins: dict[str, np.ndarray],
    own_bins: dict[str, np.ndarray],
    pairs: tuple[np.ndarray, np.ndarray],
    suffix: str,
) -> None:
    for key in KEYS:
        pred_bins = own_bins[key].copy()
        pred_bins[pairs[0]] = gt_bins[key][pairs[1]]  # a match counts in its ground-truth head's bin
        np.add.at(counts[f"{key}_pred{suffix}"], pred_bins, 1)
        np.add.at(counts[f"{key}_tp{suffix}"], gt_bins[key][pairs[1]], 1)


def _image_counts(image: Scored, radius: float) -> dict[str, np.ndarray]:
    """Per key, the counts per bin of one image: ``{key}_gt``, and ``{key}_pred``, ``{key}_tp`` at the
    fixed radius and with the suffix ``_rel`` at the relative one."""
    counts = {
        f"{key}_{what}": np.zeros(len(LABELS[key]), dtype=np.int64)
        for key in KEYS
        for what in ("gt", "pred", "tp", "pred_rel", "tp_rel")
    }
    sizes = head_sizes(image.gt)
    gt_bins = point_bins(image, sizes, image.gt)
    own_bins = point_bins(image, sizes, image.pred)
    for key in KEYS:
        np.add.at(counts[f"{key}_gt"], gt_bins[key], 1)
    _tally(counts, gt_bins, own_bins, match_pairs(image.pred, image.gt, radius), "")
    _tally(
        counts, gt_bins, own_bins, match_pairs(image.pred, image.gt, relative_radii(sizes, radius)), "_rel"
    )
    return counts


def _rows(counts: dict[str, np.ndarray], key: str) -> list[dict[str, Any]]:
    rows = []
    for b, label in enumerate(LABELS[key]):
        gt = int(counts[f"{key}_gt"][b])
        row: dict[str, Any] = {"bin": label, "gt": gt}
        for suffix in ("", "_rel"):
            pred, tp = int(counts[f"{key}_pred{suffix}"][b]), int(counts[f"{key}_tp{suffix}"][b])
            scores = prf(tp, pred, gt)
            name = "" if not suffix else "_relative"
            row |= {
                f"pred{name}": pred,
                f"tp{name}": tp,
                f"recall{name}": scores["recall"] if gt else None,
                f"precision{name}": scores["precision"] if pred else None,
            }
        rows.append(row)
    return rows


def count_bias(predicted: Sequence[int], truth: Sequence[int]) -> dict[str, Any]:
    """Mean signed count error (predicted - true) and how many images were under, over or exact."""
    err = np.asarray(predicted, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return {
        "images": len(err),
        "mean_signed_error": float(err.mean()) if len(err) else math.nan,
        "mean_relative_error": float((err / np.maximum(np.asarray(truth, dtype=np.float64), 1)).mean())
        if len(err)
        else math.nan,
        "under": int((err < 0).sum()),
        "over": int((err > 0).sum()),
        "exact": int((err == 0).sum()),
    }


def breakdown(images: Sequence[Scored], radius: float = 8.0) -> dict[str, dict[str, Any]]:
    """Per dataset (sorted) and over all images ("all"): the count bias and, by size, density and
    region, rows of ground truth, predictions, true positives, recall and precision at ``radius`` and at
    the relative radius (``None`` where a bin is empty)."""
    per_image = [_image_counts(image, radius) for image in images]
    report: dict[str, dict[str, Any]] = {}
    for name, idx in dataset_groups([image.dataset for image in images]).items():
        total = (
            {k: sum((per_image[i][k] for i in idx), np.zeros_like(v)) for k, v in per_image[0].items()}
            if idx
            else {}
        )
        entry: dict[str, Any] = {
            "radius": radius,
            "bias": count_bias([len(images[i].pred) for i in idx], [len(images[i].gt) for i in idx]),
        }
        for key in KEYS:
            entry[f"by_{key}"] = _rows(total, key) if idx else []
        report[name] = entry
    return report


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def write_tables(out: TextIO, report: dict[str, dict[str, Any]]) -> None:
    """The breakdown as Markdown: per dataset (then "all") one table, a row per bin of each key, with the
    heads, the predictions, and recall / precision at the fixed radius and at the relative radius; then
    the count bias per dataset."""
    names = [n for n in report if n != "all"] + ["all"]
    titles = {"size": "head size", "density": "heads / 100x100 px", "region": "image third"}
    for name in names:
        entry = report[name]
        r = f"{entry['radius']:g} px"
        out.write(f"\n{name}: recall and precision at {r} and at the relative radius (rel.)\n\n")
        out.write(
            f"| by | bin | heads | predicted | recall {r} | precision {r} | recall rel. | precision rel. |\n"
        )
        out.write("|---|---|---|---|---|---|---|---|\n")
        for key in KEYS:
            for row in entry[f"by_{key}"]:
                out.write(
                    f"| {titles[key]} | {row['bin']} | {row['gt']} | {row['pred']} | "
                    f"{_cell(row['recall'])} | {_cell(row['precision'])} | {_cell(row['recall_relative'])} | "
                    f"{_cell(row['precision_relative'])} |\n"
                )
    out.write("\nCount bias (predicted - true)\n\n")
    out.write("| dataset | images | mean signed error | mean relative error | under | over | exact |\n")
    out.write("|---|---|---|---|---|---|---|\n")
    for n in names:
        bias = report[n]["bias"]
        out.write(
            f"| {n} | {bias['images']} | {bias['mean_signed_error']:+.2f} | "
            f"{100 * bias['mean_relative_error']:+.1f}% | {bias['under']} | {bias['over']} | "
            f"{bias['exact']} |\n"
        )
