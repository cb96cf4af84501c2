"""Where one training step's time goes, on the real data of a training config.

    python benchmarks/profile_train_step.py configs/train_cpu_finetune.yaml --steps 3 --threads 2

It builds the real :class:`~crowdwatch.train.trainer.Trainer` of the config and drives its own
``train_step``, so what is profiled is what ``crowdwatch train`` runs. Per step (median over --steps,
after one warm-up): reading and augmenting the crops (in this process, as one DataLoader worker would),
the forward pass of each VGG block, the neck and the heads, the Hungarian matcher, the loss, and the
backward pass with the clip and the optimiser step. Run with --freeze 0, 2, 3 to see what the early
blocks' backward costs, and with --channels-last to compare memory formats. Uses the config's precision
unless --precision is given. Stop any training run first: the figures are only worth anything on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from crowdwatch.model.backbone import BLOCK_ENDS
from crowdwatch.model.p2pnet import P2PNet
from crowdwatch.train import trainer as trainer_module
from crowdwatch.train.config import load_train_config
from crowdwatch.train.dataset import collate_crops
from crowdwatch.train.loss import p2p_loss
from crowdwatch.train.matcher import match_batch

FORWARD_PARTS = ("forward neck", "forward regression head", "forward classification head")


def _timed(marks: dict[str, float], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, recording its start and end in ``marks`` under ``name``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        marks[name + ":0"] = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            marks[name + ":1"] = time.perf_counter()

    return wrapper


def _hook_forward_spans(net: P2PNet, marks: dict[str, float]) -> list[str]:
    """Pre-hooks and hooks that stamp each VGG block, the neck and the heads; returns the span names."""
    spans = {
        f"forward block {i + 1}": (net.backbone[start], net.backbone[end - 1])
        for i, (start, end) in enumerate(zip((0, *BLOCK_ENDS[:-1]), BLOCK_ENDS, strict=True))
    }
    heads = (net.neck, net.regression, net.classification)
    spans.update({name: (module, module) for name, module in zip(FORWARD_PARTS, heads, strict=True)})
    for name, (first, last) in spans.items():
        first.register_forward_pre_hook(lambda *_, n=name: marks.__setitem__(n + ":0", time.perf_counter()))
        last.register_forward_hook(lambda *_, n=name: marks.__setitem__(n + ":1", time.perf_counter()))
    return list(spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--freeze", type=int, default=None, help="override model.freeze_blocks")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=None)
    parser.add_argument(
        "--channels-last", action="store_true", help="network and crops in channels_last memory format"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_train_config(args.config)
    model = (
        config.model
        if args.freeze is None
        else config.model.model_copy(update={"freeze_blocks": args.freeze})
    )
    train = config.train.model_copy(
        update={
            "channels_last": args.channels_last or config.train.channels_last,
            "precision": args.precision or config.train.precision,
            "workers": 0,
        }
    )
    config = config.model_copy(update={"model": model, "train": train})

    marks: dict[str, float] = {}
    # the trainer's own step calls these through its module: time them there, without copying the step
    vars(trainer_module).update(
        match_batch=_timed(marks, "matcher", match_batch), p2p_loss=_timed(marks, "loss", p2p_loss)
    )
    with tempfile.TemporaryDirectory(prefix="crowdwatch-profile-") as out:
        trainer = trainer_module.Trainer(config, Path(out), resume=False, device="cpu")
        spans = _hook_forward_spans(trainer.net, marks)
        times: dict[str, list[float]] = defaultdict(list)
        per_step = config.train.images_per_step
        for step in range(args.steps + 1):
            t0 = time.perf_counter()
            images, targets = collate_crops([trainer.dataset[(step, slot)] for slot in range(per_step)])
            t1 = time.perf_counter()
            trainer.train_step(images, targets)
            t2 = time.perf_counter()
            if step == 0:
                continue  # warm-up
            times["data (read + augment + collate)"].append(t1 - t0)
            for name in spans:
                times[name].append(marks[name + ":1"] - marks[name + ":0"])
            times["forward total"].append(marks["matcher:0"] - t1)
            times["matcher"].append(marks["matcher:1"] - marks["matcher:0"])
            times["loss"].append(marks["loss:1"] - marks["loss:0"])
            times["backward + clip + optimiser step"].append(t2 - marks["loss:1"])
            times["step total"].append(t2 - t0)

    crops = per_step * config.train.crops_per_image
    total = statistics.median(times["step total"])
    print(
        f"{args.config.name}: {crops} crops of {config.train.crop_size} px per step, {trainer.precision}, "
        f"{config.model.freeze_blocks} block(s) frozen, {args.threads} threads"
        f"{', channels_last' if config.train.channels_last else ''}; median of {args.steps} steps"
    )
    for name, values in times.items():
        value = statistics.median(values)
        print(f"  {name:<34} {value * 1000:8.0f} ms  {100 * value / total:5.1f} %")
    print(f"  crops/s {crops / total:.2f}")


if __name__ == "__main__":
    main()
