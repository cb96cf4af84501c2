"""``crowdwatch export``: the network as ONNX or OpenVINO IR, optionally int8 calibrated on a site's frames.

    crowdwatch export --format onnx --out models/
    crowdwatch export --format openvino --out models/
    crowdwatch export --format openvino --int8 --calibration site.yaml --out models/
    crowdwatch export --weights runs/x/best.pt --format openvino --int8 --calibration frames/ --out models/
    crowdwatch export --format triton --out model_repository/

``--format triton`` writes a Triton model repository (``<name>/config.pbtxt`` with dynamic batching and
an instance group, ``<name>/1/model.onnx``) for NVIDIA Triton's ONNX Runtime backend (``--tensorrt``:
through its TensorRT execution provider in fp16); boxes with ``backend: triton`` use it (docs/triton.md).

``--calibration`` is a folder of images (up to ``--frames`` of them, evenly spaced) or a site config
(``--frames`` frames from each of its cameras, ``--every`` frames apart, so a site calibrates on its own
scenes). int8 writes the fp32 IR beside the int8 one and records, in the int8 model's metadata, the
calibration set and how far its counts move from the fp32 model's on those images, and prints it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crowdwatch.commands import help_text
from crowdwatch.commands.model_options import add_weights_argument
from crowdwatch.data.folders import IMAGE_SUFFIXES
from crowdwatch.errors import UsageError
from crowdwatch.images import read_image
from crowdwatch.model.triton_repo import DEFAULT_MAX_BATCH

logger = logging.getLogger(__name__)

#: Calibration images are shrunk to this longest side by default: the size a 720p camera delivers,
#: and activation ranges hardly depend on it while the statistics pass costs time in proportion.
DEFAULT_CALIBRATION_SIDE = 1280


#: What to install where a package export needs is missing.
EXPORT_HINT = "install the optional extra: pip install 'crowdwatch[export]'"


def require_export_extra(packages: Sequence[str]) -> None:
    """Import each of ``packages``, or a UsageError (exit 2) naming it and :data:`EXPORT_HINT`."""
    for package in packages:
        try:
            importlib.import_module(package)
        except ImportError as exc:
            raise UsageError(f"crowdwatch export needs {package} ({exc}); {EXPORT_HINT}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch export",
        description=help_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_weights_argument(parser)
    parser.add_argument("--format", choices=("onnx", "openvino", "triton"), required=True, dest="fmt")
    parser.add_argument(
        "--int8", action="store_true", help="also quantize to int8 (openvino; needs --calibration)"
    )
    parser.add_argument("--calibration", type=Path, help="folder of images, or a site config YAML")
    parser.add_argument(
        "--frames",
        type=int,
        default=20,
        help="calibration images: from a folder in all, from a config per camera",
    )
    parser.add_argument("--every", type=int, default=25, help="keep every n-th frame of a camera (config)")
    parser.add_argument(
        "--longest-side",
        type=int,
        default=DEFAULT_CALIBRATION_SIDE,
        metavar="PX",
        help=f"shrink calibration images to this longest side (default {DEFAULT_CALIBRATION_SIDE})",
    )
    parser.add_argument(
        "--name",
        default="p2pnet",
        help="file name stem; with --format triton the model's name (default p2pnet)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (triton: the repository)")
    triton = parser.add_argument_group("--format triton")
    triton.add_argument(
        "--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="largest batch the server forms (default 8)"
    )
    triton.add_argument("--instances", type=int, default=1, help="model instances per device (default 1)")
    triton.add_argument("--kind", choices=("gpu", "cpu"), default="gpu", help="instance kind (default gpu)")
    triton.add_argument("--tensorrt", action="store_true", help="run through TensorRT in fp16 (GPU)")
    return parser


def main(argv: list[str]) -> int:
    """Entry point of ``crowdwatch export``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.int8 and args.fmt != "openvino":
        raise UsageError("--int8 is for --format openvino (quantized ONNX is not offered)")
    if args.int8 and args.calibration is None:
        raise UsageError("--int8 needs --calibration: a folder of images or a site config")
    if args.calibration is not None and not args.int8:
        raise UsageError("--calibration is only used with --int8")
    if args.frames < 1 or args.every < 1:
        raise UsageError("--frames and --every must be at least 1")
    if args.max_batch < 1 or args.instances < 1:
        raise UsageError("--max-batch and --instances must be at least 1")
    if args.tensorrt and (args.fmt != "triton" or args.kind != "gpu"):
        raise UsageError("--tensorrt is for --format triton with --kind gpu")
    # the extra's absence is an error before any work
    require_export_extra(("torch", "onnx", *(("openvino",) if args.fmt == "openvino" else ())))
    from crowdwatch.model.checkpoint import load_checkpoint, packaged_weights

    weights = args.weights or packaged_weights()
    if weights is None:
        raise UsageError("no --weights given and this install ships no packaged weights")
    net, meta = load_checkpoint(weights)
    calibration, info = None, None
    if args.int8:
        calibration, info = load_calibration(args.calibration, args.frames, args.every)
        calibration = [shrink(image, args.longest_side) for image in calibration]
        info["longest_side"] = args.longest_side
    if args.fmt == "triton":
        return _export_triton(args, net, meta)
    from crowdwatch.model.export import export_model

    logger.info("exporting %s as %s%s to %s", weights, args.fmt, " + int8" if args.int8 else "", args.out)
    path = export_model(
        net,
        meta,
        args.out,
        fmt=args.fmt,
        name=args.name,
        calibration=calibration,
        calibration_info=info,
        count_fn=_counts if args.int8 else None,
    )
    sys.stdout.write(f"wrote {path}\n")
    if args.int8:
        sys.stdout.write(drift_line(path) + "\n")
    return 0


def _export_triton(args: argparse.Namespace, net: Any, meta: Any) -> int:
    """The model repository: the ONNX file as ``<name>/1/model.onnx`` and its ``config.pbtxt``."""
    import tempfile

    from crowdwatch.model.export import export_metadata, export_onnx
    from crowdwatch.model.triton_repo import config_pbtxt, write_repository

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".crowdwatch-export.", dir=args.out) as tmp:
        onnx_file = export_onnx(net, meta, Path(tmp) / "model.onnx")
        metadata = export_metadata(meta, format="triton-onnx", precision="fp16" if args.tensorrt else "fp32")
        config = config_pbtxt(
            args.name,
            metadata,
            max_batch=args.max_batch,
            instances=args.instances,
            kind=args.kind,
            tensorrt=args.tensorrt,
        )
        path = write_repository(args.out, args.name, onnx_file, config)
    sys.stdout.write(f"wrote {path} and {path.parent / '1' / 'model.onnx'}\n")
    return 0


def drift_line(int8_xml: Path) -> str:
    """The int8 model's count drift against the fp32 model, as its metadata records it."""
    import openvino as ov

    from crowdwatch.model.backends import read_metadata

    drift = read_metadata(int8_xml, ov.Core().read_model(str(int8_xml)))["export"].get("count_drift")
    if not drift:
        return "int8 count drift: not measured"
    return (
        f"int8 count drift against the fp32 model on {drift['images']} calibration image(s): "
        f"MAE {drift['count_mae_vs_fp32']:g} ({drift['count_mae_percent_of_mean']:g}% of the mean count "
        f"{drift['mean_count_fp32']:g}), largest difference {drift['max_abs_count_diff']:g}; check it on "
        "annotated frames with crowdwatch evaluate --backend openvino"
    )


def _counts(path: Path, images: Sequence[np.ndarray]) -> list[int]:
    from crowdwatch.model.predictor import Predictor

    predictor = Predictor.from_checkpoint(path, backend="openvino")
    return [predictor.predict([image])[0].count for image in images]


def shrink(image: np.ndarray, longest_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    if max(height, width) <= longest_side:
        return image
    factor = longest_side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def load_calibration(source: Path, frames: int, every: int) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Calibration images and their description, from a folder of images or a site config."""
    if source.is_dir():
        return images_from_folder(source, frames)
    if source.is_file() and source.suffix.lower() in (".yaml", ".yml"):
        return frames_from_config(source, frames, every)
    if not source.exists():
        raise UsageError(f"--calibration {source}: no such file or folder")
    raise UsageError(f"--calibration {source}: expected a folder of images or a site config (.yaml)")


def images_from_folder(folder: Path, limit: int) -> tuple[list[np.ndarray], dict[str, Any]]:
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise UsageError(
            f"--calibration {folder}: the folder holds no images "
            f"({', '.join(IMAGE_SUFFIXES)}, searched recursively)"
        )
    if len(paths) > limit:  # evenly spaced over the folder, so one scene does not fill the set
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, limit).round().astype(int)]
    images = []
    for path in paths:
        try:
            images.append(read_image(path))
        except OSError as exc:
            raise UsageError(f"--calibration: cannot read {path}: {exc}") from None
    return images, {"source": "folder", "path": str(folder), "images": len(images)}


def frames_from_config(config_path: Path, frames: int, every: int) -> tuple[list[np.ndarray], dict[str, Any]]:
    """``frames`` frames from each camera of the site config, ``every`` frames apart."""
    from crowdwatch.capture.base import SourceError
    from crowdwatch.capture.opencv import open_capture
    from crowdwatch.config.loader import load_config

    config = load_config(config_path)
    images: list[np.ndarray] = []
    per_camera: dict[str, int] = {}
    for camera in config.cameras:
        logger.info("%s: grabbing %d calibration frames", camera.id, frames)
        try:
            capture = open_capture(camera, threading.Event())
        except SourceError as exc:
            raise UsageError(f"--calibration: {exc}") from None
        got = 0
        try:
            for index in range(frames * every):
                if not capture.grab():
                    break
                if index % every:
                    continue
                ok, image = capture.retrieve()
                if ok and image is not None:
                    images.append(np.ascontiguousarray(image))
                    got += 1
        finally:
            capture.release()
        if got == 0:
            raise UsageError(f"--calibration: camera {camera.id} delivered no frame")
        per_camera[camera.id] = got
    return images, {
        "source": "site config",
        "path": str(config_path),
        "images": len(images),
        "cameras": per_camera,
    }
