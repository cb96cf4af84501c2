"""Building what a run needs from its config: network (initialised), optimiser, scheduler."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crowdwatch.errors import BackboneWeightsMissing, UsageError
from crowdwatch.model.backbone import freeze_blocks, kaiming_init, load_backbone_file, load_imagenet_backbone
from crowdwatch.model.checkpoint import DEFAULT_WEIGHTS, load_checkpoint
from crowdwatch.model.p2pnet import P2PNet
from crowdwatch.train.config import TrainConfig

logger = logging.getLogger(__name__)

#: Learning rates are multiplied by this from ``lr_drop_step`` on (the published StepLR gamma).
LR_DROP_FACTOR = 0.1


def init_backbone(net: P2PNet, how: str) -> str | dict[str, str]:
    """Initialise the backbone; returns what was done: "imagenet", "kaiming ...", or for a file the
    record of :func:`load_backbone_file` (path, sha256, attribution)."""
    if how not in ("imagenet", "kaiming"):
        return load_backbone_file(net.backbone, how)
    if how == "imagenet":
        try:
            load_imagenet_backbone(net.backbone, download=False)
            return "imagenet"
        except BackboneWeightsMissing as exc:
            logger.warning(
                "%s. Training from a Kaiming-initialised backbone instead: expect much slower "
                "convergence and worse accuracy than the published recipe",
                exc,
            )
    kaiming_init(net.backbone)
    return "kaiming" if how == "kaiming" else "kaiming (ImageNet weights not cached)"


def init_from_checkpoint(net: P2PNet, source: str) -> dict[str, Any]:
    """Load every weight of ``net`` from a crowdwatch checkpoint (fine-tuning).

    ``source`` is a path or ``"default"`` (the packaged weights). Returns what the run started from,
    for the provenance of the weights it exports: the file and that file's own provenance.
    """
    path = DEFAULT_WEIGHTS if source == "default" else Path(source)
    if source == "default" and not path.is_file():
        raise UsageError(f"model.init_from: default: the packaged weights are missing ({path})")
    # CheckpointError (missing, corrupt, wrong N, ...) carries its own clear message.
    start, meta = load_checkpoint(path, num_candidates=net.num_candidates)
    net.load_state_dict(start.state_dict())
    if not meta.trained:
        logger.warning(
            "model.init_from: %s holds untrained weights; this is no better than a fresh start", path
        )
    return {"path": str(path), "provenance": meta.provenance}


def build_net(config: TrainConfig, seed: int) -> tuple[P2PNet, str | dict[str, Any]]:
    """A fresh network, its random init fixed by ``seed``; returns (net, how it was initialised).

    How: the backbone init's description, or for ``model.init_from`` the checkpoint it started from.
    """
    torch.manual_seed(seed)
    model = config.model
    net = P2PNet(num_candidates=model.num_candidates)
    how: str | dict[str, Any]
    if model.init_from is not None:
        how = init_from_checkpoint(net, model.init_from)
    else:
        how = init_backbone(net, model.backbone_init)
        if model.cls_prior is not None:
            set_prior(net, model.cls_prior)
    if model.freeze_blocks:
        frozen = freeze_blocks(net.backbone, model.freeze_blocks)
        logger.info("backbone: first %d block(s) frozen (%.1f M weights)", model.freeze_blocks, frozen / 1e6)
    return net, how


def set_prior(net: P2PNet, prior: float) -> None:
    """Start every candidate at person probability ``prior`` (RetinaNet's prior-probability bias).

    The output conv's weights are drawn small (normal, std 0.01, as RetinaNet does), so the first
    predictions are close to ``prior`` everywhere and the first steps are not spent pushing a 50 % guess
    down to the background rate of a crop.
    """
    with torch.no_grad():
        nn.init.normal_(net.classification.output.weight, std=0.01)
        bias = net.classification.output.bias
        assert bias is not None  # nn.Conv2d has a bias unless built with bias=False
        bias.fill_(-math.log((1 - prior) / prior))


def build_optimizer(net: P2PNet, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with two groups: backbone at ``lr_backbone``, neck and heads at ``lr``."""
    opt = config.train
    backbone = [p for p in net.backbone.parameters() if p.requires_grad]
    backbone_ids = {id(p) for p in backbone}
    rest = [p for p in net.parameters() if p.requires_grad and id(p) not in backbone_ids]
    groups = [{"params": rest, "lr": opt.lr, "name": "heads"}]
    if opt.lr_backbone > 0:
        groups.append({"params": backbone, "lr": opt.lr_backbone, "name": "backbone"})
    else:
        for p in backbone:
            p.requires_grad_(False)
    return torch.optim.Adam(groups, lr=opt.lr, weight_decay=opt.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler:
    """Constant learning rates, dropped by ``LR_DROP_FACTOR`` from ``lr_drop_step`` on if set."""
    drop = config.train.lr_drop_step

    def factor(step: int) -> float:
        return LR_DROP_FACTOR if drop is not None and step >= drop else 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
