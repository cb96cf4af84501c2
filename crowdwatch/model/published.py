"""Importing checkpoints of the published P2PNet code into crowdwatch's architecture, exactly
(``crowdwatch convert`` is :mod:`crowdwatch.commands.convert`).

The published model (vgg16_bn or vgg16 backbone, 2-class softmax head, anchors + 100 x regression)
and crowdwatch's P2PNet compute the same function once

- each BatchNorm is folded into the conv before it,
- the FPN's P4_1 / P5_1 / P4_2 become the neck's lateral4 / lateral5 / smooth,
- the 2-class head becomes one logit per candidate: ``logit_k = out[2k+1] - out[2k]`` (so that
  ``sigmoid(logit_k)`` equals the softmax's person probability),
- the x100 scale and each anchor's shift from its cell centre are folded into the last
  regression conv.

Layers the published model carries but never uses on its output path (its P3 and P5_2 branches,
the heads' conv3/conv4) are dropped, by name.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

import torch

from crowdwatch.choices import DEFAULT_THRESHOLD
from crowdwatch.errors import CheckpointError
from crowdwatch.model.anchors import grid_layout
from crowdwatch.model.checkpoint import read_checkpoint_file, save_checkpoint
from crowdwatch.model.p2pnet import REGRESSION_SCALE, P2PNet

logger = logging.getLogger(__name__)

#: The published code's regression scale: point = anchor + PUBLISHED_SCALE * output.
PUBLISHED_SCALE = 100.0
#: BatchNorm epsilon of torchvision's vgg16_bn.
BN_EPS = 1e-5
#: (body, index) of each conv in published bodies, in network order, for both backbone variants.
_PUBLISHED_CONVS = {
    "vgg16_bn": [
        (1, 0),
        (1, 3),
        (1, 7),
        (1, 10),
        (2, 1),
        (2, 4),
        (2, 7),
        (3, 1),
        (3, 4),
        (3, 7),
        (4, 1),
        (4, 4),
        (4, 7),
    ],
    "vgg16": [
        (1, 0),
        (1, 2),
        (1, 5),
        (1, 7),
        (2, 1),
        (2, 3),
        (2, 5),
        (3, 1),
        (3, 3),
        (3, 5),
        (4, 1),
        (4, 3),
        (4, 5),
    ],
}
#: Indices of the 13 convs inside torchvision vgg16().features[0:30] (crowdwatch's backbone).
_OUR_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
#: Published tensors that never reach the model's output: dropped on conversion.
UNUSED_PREFIXES = (
    "fpn.P3_1.",
    "fpn.P3_2.",
    "fpn.P5_2.",
    "regression.conv3.",
    "regression.conv4.",
    "classification.conv3.",
    "classification.conv4.",
)


def detect_backbone(state: Mapping[str, torch.Tensor]) -> str:
    """'vgg16_bn' if the published state dict has BatchNorm statistics, else 'vgg16'."""
    return "vgg16_bn" if "backbone.body1.1.running_mean" in state else "vgg16"


def remap_p2pnet_state_dict(
    state: Mapping[str, torch.Tensor],
    *,
    anchor_rows: int = 2,
    anchor_cols: int = 2,
    regression_scale: float = REGRESSION_SCALE,
    path: str | Path = "<state dict>",
) -> tuple[dict[str, torch.Tensor], int, str]:
    """Map a published P2PNet state dict to crowdwatch's P2PNet keys (float64 arithmetic).

    Returns:
        (state dict for ``P2PNet(num_candidates=N)``, N, backbone variant name).

    Raises:
        CheckpointError: missing tensors, or tensors no rule accounts for (named).
    """
    state = {k.removeprefix("module."): v for k, v in state.items()}
    variant = detect_backbone(state)
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        if key not in state:
            raise CheckpointError(
                path, f"published checkpoint lacks tensor {key} ({variant} layout)", reason="keys"
            )
        used.add(key)
        return state[key].detach().to(torch.float64)

    out: dict[str, torch.Tensor] = {}
    for ours, (body, idx) in zip(_OUR_CONVS, _PUBLISHED_CONVS[variant], strict=True):
        prefix = f"backbone.body{body}."
        weight, bias = take(f"{prefix}{idx}.weight"), take(f"{prefix}{idx}.bias")
        if variant == "vgg16_bn":
            bn = f"{prefix}{idx + 1}."
            gamma, beta = take(bn + "weight"), take(bn + "bias")
            mean, var = take(bn + "running_mean"), take(bn + "running_var")
            used.add(bn + "num_batches_tracked")
            factor = gamma / torch.sqrt(var + BN_EPS)
            weight = weight * factor.view(-1, 1, 1, 1)
            bias = (bias - mean) * factor + beta
        out[f"backbone.{ours}.weight"], out[f"backbone.{ours}.bias"] = weight, bias

    for neck_conv, theirs in (("lateral4", "P4_1"), ("lateral5", "P5_1"), ("smooth", "P4_2")):
        for p in ("weight", "bias"):
            out[f"neck.{neck_conv}.{p}"] = take(f"fpn.{theirs}.{p}")

    for head in ("regression", "classification"):
        for ours, theirs in ((0, "conv1"), (2, "conv2")):
            for p in ("weight", "bias"):
                out[f"{head}.body.{ours}.{p}"] = take(f"{head}.{theirs}.{p}")

    num = anchor_rows * anchor_cols
    reg_w, reg_b = take("regression.output.weight"), take("regression.output.bias")
    cls_w, cls_b = take("classification.output.weight"), take("classification.output.bias")
    if reg_w.shape[0] != 2 * num or cls_w.shape[0] != 2 * num:
        raise CheckpointError(
            path,
            f"wrong N: an anchor grid of {anchor_rows}x{anchor_cols} means {2 * num} output channels per "
            f"head, but the checkpoint has {reg_w.shape[0]} (regression) and {cls_w.shape[0]} "
            "(classification); pass the grid it was trained with (--anchor-rows/--anchor-cols)",
            reason="wrong_n",
        )
    # offset = shift + 100 * (W x + b)  ==  scale * (W' x + b')  with W' = W * 100 / scale,
    # b' = (100 b + shift) / scale; channel 2k is x, 2k+1 is y of candidate k.
    shift = grid_layout(anchor_rows, anchor_cols).reshape(-1)
    out["regression.output.weight"] = reg_w * (PUBLISHED_SCALE / regression_scale)
    out["regression.output.bias"] = (PUBLISHED_SCALE * reg_b + shift) / regression_scale
    # Channel 2k is background, 2k+1 person: softmax's p(person) = sigmoid(person - background).
    out["classification.output.weight"] = cls_w[1::2] - cls_w[0::2]
    out["classification.output.bias"] = cls_b[1::2] - cls_b[0::2]

    dropped = sorted(k for k in state if k.startswith(UNUSED_PREFIXES))
    unknown = sorted(k for k in state if k not in used and k not in dropped)
    if unknown:
        shown = ", ".join(unknown[:6]) + (f" and {len(unknown) - 6} more" if len(unknown) > 6 else "")
        raise CheckpointError(
            path, f"unexpected tensors in a published P2PNet checkpoint: {shown}", reason="keys"
        )
    logger.info(
        "dropped %d tensors the published model never uses: %s",
        len(dropped),
        ", ".join(sorted({k.rsplit(".", 1)[0] for k in dropped})),
    )
    return {k: v.float() for k, v in out.items()}, num, variant


def convert_checkpoint(
    src: str | Path,
    dst: str | Path,
    *,
    anchor_rows: int = 2,
    anchor_cols: int = 2,
    threshold: float = DEFAULT_THRESHOLD,
    half: bool = False,
) -> P2PNet:
    """Convert the published checkpoint ``src`` into a crowdwatch checkpoint at ``dst``."""
    src = Path(src)
    # The published training script pickles its argparse.Namespace beside the weights: allow that class.
    with torch.serialization.safe_globals([argparse.Namespace]):
        payload = read_checkpoint_file(src)
    state = payload.get("model", payload) if isinstance(payload, Mapping) else None
    if not isinstance(state, Mapping) or not any(
        str(k).startswith(("backbone.body", "module.backbone.body")) for k in state
    ):
        raise CheckpointError(
            src,
            "is not a checkpoint of the published P2PNet code (no backbone.body* tensors)",
            reason="architecture",
        )
    mapped, num, variant = remap_p2pnet_state_dict(
        state, anchor_rows=anchor_rows, anchor_cols=anchor_cols, path=src
    )
    net = P2PNet(num_candidates=num)
    net.load_state_dict(mapped, strict=True)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    save_checkpoint(
        dst,
        net,
        threshold=threshold,
        half=half,
        provenance={
            "source": "converted from a published P2PNet checkpoint",
            "source_file": src.name,
            "source_sha256": digest,
            "source_backbone": variant,
            "anchor_grid": [anchor_rows, anchor_cols],
        },
    )
    return net
