"""``crowdwatch count IMG...``: count people in image files from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import cv2
import numpy as np

from crowdwatch.commands.model_options import add_model_arguments, predictor_from_args
from crowdwatch.drawing import draw_points
from crowdwatch.errors import ImageTooLarge
from crowdwatch.images import DEFAULT_MAX_PIXELS, check_image_file, read_image

logger = logging.getLogger(__name__)
T = TypeVar("T")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch count",
        description="Count people in images. Prints one 'COUNT<TAB>PATH' line per image (or JSON with "
        "the points). Unreadable files are reported and skipped; the exit code is then 1. Images over "
        "--max-pixels are refused from their header, without decoding; the exit code is then 2.",
    )
    parser.add_argument("images", nargs="+", metavar="IMG", help="image files (any format OpenCV reads)")
    add_model_arguments(parser)
    parser.add_argument(
        "--overlay",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each image with its points drawn to DIR/<name>.jpg",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse images over N pixels, read from the file header before decoding "
        f"(default: {DEFAULT_MAX_PIXELS:,}); a refused image makes the exit code 2",
    )
    parser.add_argument("--json", action="store_true", help="print JSON with points and scores")
    return parser


def _open_image(
    step: Callable[[Path, int], T], path: Path, max_pixels: int
) -> tuple[T | None, Literal["unreadable", "refused"] | None]:
    """Run ``step`` (the header check or the read) on one image: (its result, None), or (None, what went
    wrong) with the reason reported on stderr."""
    try:
        return step(path, max_pixels), None
    except OSError as exc:
        print(f"crowdwatch: cannot read {path}: {exc}", file=sys.stderr)
        return None, "unreadable"
    except ImageTooLarge as exc:
        print(f"crowdwatch: error: {exc}", file=sys.stderr)
        return None, "refused"


def _json_entry(path: Path, image: np.ndarray, prediction: Any) -> dict[str, object]:
    return {
        "image": str(path),
        "count": prediction.count,
        "width": image.shape[1],
        "height": image.shape[0],
        "points": np.round(prediction.points.astype(np.float64), 2).tolist(),
        "scores": np.round(prediction.scores.astype(np.float64), 4).tolist(),
    }


def _write_overlay(folder: Path, path: Path, image: np.ndarray, prediction: Any) -> bool:
    out_path = folder / f"{path.stem}.jpg"
    if cv2.imwrite(str(out_path), draw_points(image, prediction.points, prediction.count)):
        return True
    print(f"crowdwatch: cannot write overlay {out_path}", file=sys.stderr)
    return False


def main(argv: list[str]) -> int:
    """Entry point of ``crowdwatch count``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_pixels < 1 or (args.tile_pixels is not None and args.tile_pixels < 1):
        parser.error("--max-pixels and --tile-pixels must be at least 1")
    # every header first: a run whose images are all refused or unreadable never loads the model
    problems: list[str] = []
    paths = []
    for name in args.images:
        _, problem = _open_image(check_image_file, Path(name), args.max_pixels)
        if problem is not None:
            problems.append(problem)
        else:
            paths.append(Path(name))
    if not paths and not args.json:
        return 2 if "refused" in problems else 1
    # the model (torch: ~5 s and ~0.7 GB) loads once every image header has passed
    predictor = predictor_from_args(args)
    if args.overlay is not None:
        args.overlay.mkdir(parents=True, exist_ok=True)
    results = []
    for path in paths:
        image, problem = _open_image(read_image, path, args.max_pixels)
        if image is None:
            problems.append(problem or "unreadable")
            continue
        prediction = predictor.predict([image])[0]
        if args.overlay is not None and not _write_overlay(args.overlay, path, image, prediction):
            problems.append("unreadable")
        if args.json:
            results.append(_json_entry(path, image, prediction))
        else:
            print(f"{prediction.count}\t{path}", flush=True)
    refused, failures = problems.count("refused"), problems.count("unreadable")
    if args.json:
        summary = {
            "weights": str(args.weights) if args.weights else "default",
            "trained": predictor.trained,
            "threshold": predictor.threshold,
            "backend": predictor.backend.name,
            "precision": predictor.precision,
            "device": str(predictor.device),
            "images": results,
            "unreadable": failures,
            "refused": refused,
        }
        json.dump(summary, sys.stdout, indent=1)
        sys.stdout.write("\n")
    if not predictor.trained:
        logger.warning("the counts above come from UNTRAINED weights and are meaningless")
    return 2 if refused else 1 if failures else 0
