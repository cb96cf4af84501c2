"""Building what a run needs from its config: device, precision, network, optimiser, scheduler."""

from __future__ import annotations

import logging

import torch
from torch import nn

from crowdwatch.errors import BackboneWeightsMissing, UsageError
from crowdwatch.model.p2pnet import P2PNet
from crowdwatch.train.config import TrainConfig

logger = logging.getLogger(__name__)

#: Learning rates are multiplied by this from ``lr_drop_step`` on (the published StepLR gamma).
LR_DROP_FACTOR = 0.1


def resolve_precision(precision: str, device: torch.device) -> str:
    """auto -> bf16 on CPU and on CUDA with bf16 support, fp16 on other GPUs."""
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise UsageError("train.precision: fp16 training is only supported on CUDA (use bf16 on CPU)")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16"


AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def kaiming_init_backbone(net: P2PNet) -> None:
    """He-normal (fan_out, ReLU) weights and zero biases for every backbone conv."""
    for module in net.backbone.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)


def init_backbone(net: P2PNet, how: str) -> str:
    """Initialise the backbone; returns what was done ("imagenet" or "kaiming ...")."""
    if how == "imagenet":
        try:
            from crowdwatch.model.backbone import load_imagenet_backbone
        except ImportError:  # the model package without its backbone helper
            logger.warning("ImageNet backbone loader unavailable; training the backbone from Kaiming init")
            kaiming_init_backbone(net)
            return "kaiming (no ImageNet loader)"
        try:
            load_imagenet_backbone(net, download=False)
            return "imagenet"
        except BackboneWeightsMissing as exc:
            logger.warning(
                "%s. Training from a Kaiming-initialised backbone instead: expect much slower "
                "convergence and worse accuracy than the published recipe", exc,
            )
    kaiming_init_backbone(net)
    return "kaiming" if how == "kaiming" else "kaiming (ImageNet weights not cached)"


def build_net(config: TrainConfig, seed: int) -> tuple[P2PNet, str]:
    """A fresh network, its random init fixed by ``seed``; returns (net, backbone init description)."""
    torch.manual_seed(seed)
    net = P2PNet(num_candidates=config.model.num_candidates)
    return net, init_backbone(net, config.model.backbone_init)


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
