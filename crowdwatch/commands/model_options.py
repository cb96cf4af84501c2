"""The model options every command that runs the network shares, and the one factory that turns them
into a :class:`~crowdwatch.model.predictor.Predictor`.

``--weights``, ``--backend``, ``--precision``, ``--device``, ``--threshold``, ``--longest-side`` and
``--tile-pixels``, then each backend's own options (triton: ``--url``, ``--model-name``, ``--timeout``,
``--tls-ca``). ``count``, ``evaluate`` and ``benchmark`` add them with :func:`add_model_arguments` and
build their predictor with :func:`predictor_from_args`; a new backend adds its name to
:mod:`crowdwatch.choices` and its options here, and the commands follow.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from crowdwatch.choices import BACKENDS, PRECISIONS
from crowdwatch.commands import add_tile_pixels_argument
from crowdwatch.poolurl import DEFAULT_TRITON_MODEL

if TYPE_CHECKING:  # torch loads only once the arguments are parsed
    from crowdwatch.model.predictor import Predictor
    from crowdwatch.model.triton import TritonTarget

__all__ = ["add_model_arguments", "add_weights_argument", "predictor_from_args", "triton_target"]

WEIGHTS_HELP = (
    "crowdwatch checkpoint (default: the packaged weights, also by the name default); with --backend "
    "openvino the exported .xml or .onnx; none with --backend triton"
)
BACKEND_HELP = (
    "torch (a .pt checkpoint), openvino (--weights names an exported .xml or .onnx) or triton (a shared "
    "Triton pool at --url; no weights here)"
)


def add_weights_argument(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument("--weights", type=Path, default=None, required=required, help=WEIGHTS_HELP)


def add_model_arguments(
    parser: argparse.ArgumentParser,
    *,
    weights_required: bool = False,
    devices: Sequence[str] | None = None,
    threshold: bool = True,
    geometry: bool = True,
) -> None:
    """The shared model options. ``devices``: a fixed list of choices (default: auto, cpu, cuda[:N]);
    ``threshold``/``geometry``: whether the command takes ``--threshold`` and ``--longest-side`` /
    ``--tile-pixels``."""
    add_weights_argument(parser, required=weights_required)
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help=BACKEND_HELP)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto = fp16 on CUDA, bf16 on CPUs with native bf16, else fp32",
    )
    if devices is None:
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    else:
        parser.add_argument("--device", default=devices[0], choices=list(devices))
    if threshold:
        parser.add_argument(
            "--threshold", type=float, default=None, help="score threshold in [0, 1) (default: the model's)"
        )
    if geometry:
        parser.add_argument(
            "--longest-side",
            type=int,
            default=None,
            metavar="PX",
            help="shrink images whose longest side exceeds PX before counting",
        )
        add_tile_pixels_argument(parser)
    pool = parser.add_argument_group("backend triton (a shared NVIDIA Triton pool, docs/triton.md)")
    pool.add_argument("--url", default=None, help="the pool: grpc://HOST:PORT (grpcs:// for TLS)")
    pool.add_argument(
        "--model-name",
        default=DEFAULT_TRITON_MODEL,
        help=f"the pool's model (default {DEFAULT_TRITON_MODEL})",
    )
    pool.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="deadline of one request (default 10 s)"
    )
    pool.add_argument(
        "--tls-ca", type=Path, default=None, help="grpcs://: CA bundle of the pool's certificate"
    )


def triton_target(args: argparse.Namespace) -> TritonTarget | None:
    """The pool that ``--backend triton --url`` names (None for the other backends); UsageError for a
    ``--url`` without ``--backend triton`` or the reverse."""
    from crowdwatch.errors import UsageError
    from crowdwatch.model.triton import TritonTarget

    if args.backend != "triton":
        if args.url is not None:
            raise UsageError("--url is for --backend triton")
        return None
    if args.url is None:
        raise UsageError("--backend triton needs --url grpc://HOST:PORT (the pool)")
    return TritonTarget(args.url, name=args.model_name, timeout_s=args.timeout, ca=args.tls_ca)


def predictor_from_args(args: argparse.Namespace) -> Predictor:
    """The Predictor the parsed model options describe (the one factory the commands share)."""
    target = triton_target(args)
    from crowdwatch.model.predictor import Predictor  # heavy: torch

    return Predictor.from_checkpoint(
        args.weights,
        backend=args.backend,
        device=args.device,
        precision=args.precision,
        threshold=getattr(args, "threshold", None),
        longest_side=getattr(args, "longest_side", None),
        tile_pixels=getattr(args, "tile_pixels", None),
        triton=target,
    )
