"""Where one training step's time goes, on the real data of a training config.

    python benchmarks/profile_train_step.py configs/train_cpu_finetune.yaml --steps 3 --threads 2

Per step (median over --steps, after one warm-up): reading and augmenting the crops (in this process,
as one DataLoader worker would), the forward pass of each VGG block, the neck and the heads, the
Hungarian matcher, the loss, the backward pass and the optimiser step. The backward pass is timed
whole; run with --freeze 0, 2, 3 to see what the early blocks' backward costs, and with
--channels-last to compare memory formats. Uses the config's precision unless --precision is given.
Stop any training run first: the figures are only worth anything on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch

from crowdwatch.data.folders import read_folder, split_items
from crowdwatch.model.backbone import BLOCK_ENDS, freeze_blocks
from crowdwatch.model.precision import AUTOCAST_DTYPES, resolve_training_precision
from crowdwatch.train import build
from crowdwatch.train.augment import AugmentParams
from crowdwatch.train.config import load_train_config
from crowdwatch.train.dataset import CropDataset, collate_crops
from crowdwatch.train.loss import p2p_loss
from crowdwatch.train.matcher import match_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    opt = config.train
    names = config.dataset_names()
    folders = [read_folder(d.path, n) for d, n in zip(config.data.datasets, names, strict=True)]
    train_items = [split_items(f, every=config.data.val_every, part="train") for f in folders]
    dataset = CropDataset(
        train_items,
        [d.weight for d in config.data.datasets],
        seed=config.seed,
        crops=opt.crops_per_image,
        params=AugmentParams(opt.crop_size, opt.scale[0], opt.scale[1], opt.flip),
    )
    model_cfg = config.model.model_copy(update={"freeze_blocks": 0})
    net, _ = build.build_net(config.model_copy(update={"model": model_cfg}), config.seed)
    frozen = config.model.freeze_blocks if args.freeze is None else args.freeze
    freeze_blocks(net.backbone, frozen)
    net.train()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    net.to(memory_format=memory_format)
    optimizer = build.build_optimizer(net, config)
    precision = args.precision or resolve_training_precision(opt.precision, torch.device("cpu"))
    dtype = AUTOCAST_DTYPES[precision]

    marks: dict[str, float] = {}
    # Forward time per block: a pre-hook on each block's first layer, a hook on its last.
    spans = {
        f"forward block {i + 1}": (start, end - 1)
        for i, (start, end) in enumerate(zip((0, *BLOCK_ENDS[:-1]), BLOCK_ENDS, strict=True))
    }
    for name, (first, last) in spans.items():
        net.backbone[first].register_forward_pre_hook(
            lambda *_, n=name: marks.__setitem__(n + ":0", time.perf_counter())
        )
        net.backbone[last].register_forward_hook(
            lambda *_, n=name: marks.__setitem__(n + ":1", time.perf_counter())
        )
    for name, module in (
        ("forward neck", net.neck),
        ("forward regression head", net.regression),
        ("forward classification head", net.classification),
    ):
        module.register_forward_pre_hook(lambda *_, n=name: marks.__setitem__(n + ":0", time.perf_counter()))
        module.register_forward_hook(lambda *_, n=name: marks.__setitem__(n + ":1", time.perf_counter()))

    times: dict[str, list[float]] = defaultdict(list)
    per_step = opt.images_per_step
    for step in range(args.steps + 1):
        t0 = time.perf_counter()
        images, targets = collate_crops([dataset[(step, slot)] for slot in range(per_step)])
        images = images.contiguous(memory_format=memory_format)
        t1 = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = net(images)
        t2 = time.perf_counter()
        matches = match_batch(out["logits"], out["points"], targets)
        t3 = time.perf_counter()
        losses = p2p_loss(out["logits"], out["points"], targets, matches)
        t4 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        t5 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(net.parameters(), opt.grad_clip)
        optimizer.step()
        t6 = time.perf_counter()
        if step == 0:
            continue  # warm-up
        times["data (read + augment + collate)"].append(t1 - t0)
        for name in [*spans, "forward neck", "forward regression head", "forward classification head"]:
            times[name].append(marks[name + ":1"] - marks[name + ":0"])
        times["forward total"].append(t2 - t1)
        times["matcher"].append(t3 - t2)
        times["loss"].append(t4 - t3)
        times["backward"].append(t5 - t4)
        times["clip + optimiser step"].append(t6 - t5)
        times["step total"].append(t6 - t0)

    crops = per_step * opt.crops_per_image
    total = statistics.median(times["step total"])
    print(
        f"{args.config.name}: {crops} crops of {opt.crop_size} px per step, {precision}, "
        f"{frozen} block(s) frozen, {args.threads} threads"
        f"{', channels_last' if args.channels_last else ''}; median of {args.steps} steps"
    )
    for name, values in times.items():
        value = statistics.median(values)
        print(f"  {name:<30} {value * 1000:8.0f} ms  {100 * value / total:5.1f} %")
    print(f"  crops/s {crops / total:.2f}")


if __name__ == "__main__":
    main()
