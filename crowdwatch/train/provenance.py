"""What weights exported by a training run record about it: data, split, length, init and validation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from crowdwatch.data.folders import Item
from crowdwatch.model.precision import machine_description
from crowdwatch.train.config import TrainConfig


def training_provenance(
    config: TrainConfig,
    *,
    train_items: Sequence[Sequence[Item]],
    val_items: Sequence[Item],
    steps: int,
    wall_time_s: float,
    device: torch.device,
    precision: str,
    init: str | Mapping[str, Any],
    val: Mapping[str, Mapping[str, float]],
) -> dict[str, Any]:
    """What the exported weights were trained on, for how long, and how they validate.

    Args:
        train_items: per dataset of ``config``, its training items.
        val_items: the validation items actually used (all datasets).
        init: how the network started: the backbone init's description, or for ``model.init_from``
            the checkpoint it was fine-tuned from.
        val: validation figures per dataset and "all" ({"mae", "rmse", "n"}).
    """
    names = config.dataset_names()
    return {
        "trained_by": "crowdwatch train",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "datasets": [
            {
                "name": n,
                "path": str(d.path),
                "weight": d.weight,
                "train_images": len(t),
                "val_images_used": sum(1 for v in val_items if v.dataset == n),
            }
            for n, d, t in zip(names, config.data.datasets, train_items, strict=True)
        ],
        "validation_split": f"every {config.data.val_every}th image by sorted file name (indices 0, "
        f"{config.data.val_every}, ...), held out from training"
        if config.data.val_every
        else "none: every image of these folders was trained on (val_every: 0)",
        "validation_longest_side": config.validation.longest_side,
        "steps": steps,
        "crops_seen": steps * config.train.images_per_step * config.train.crops_per_image,
        "wall_time_s": round(wall_time_s, 1),
        "device": str(device),
        "machine": machine_description(device),
        "precision": precision,
        **({"init_from": init} if config.model.init_from is not None else {"backbone_init": init}),
        "validation": {
            name: {"mae": m["mae"], "rmse": m["rmse"], "images": m["n"]} for name, m in val.items()
        },
        "config": config.model_dump(mode="json"),
    }
