"""Time P2PNet training steps on synthetic crops: seconds per step and crops per second.

    python benchmarks/bench_train.py --crops 32 --crop-size 128 --steps 5 --threads 2 --precision bf16

Loads no data from disk (random blob images in memory), so it measures the model, matcher and
optimiser, not JPEG decoding.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from crowdwatch.data.synthetic import blob_image
from crowdwatch.model.p2pnet import P2PNet
from crowdwatch.model.precision import AUTOCAST_DTYPES
from crowdwatch.train.dataset import to_tensor
from crowdwatch.train.loss import p2p_loss
from crowdwatch.train.matcher import match_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=32)
    parser.add_argument("--crop-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="bf16")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    samples = [blob_image(rng, (args.crop_size, args.crop_size), 30) for _ in range(args.crops)]
    images = torch.stack([to_tensor(img) for img, _ in samples]).to(device)
    targets = [torch.from_numpy(pts) for _, pts in samples]
    net = P2PNet().to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=args.precision == "fp16")
    dtype = AUTOCAST_DTYPES[args.precision]
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = net(images)
        loss = p2p_loss(
            out["logits"], out["points"], targets, match_batch(out["logits"], out["points"], targets)
        )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss["total"]).backward()  # type: ignore[no-untyped-call]  # unannotated in torch
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.1)
        scaler.step(optimizer)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    per_step = float(np.median(times))
    print(
        f"{args.crops} crops of {args.crop_size}px, {args.precision} on {device} "
        f"({torch.get_num_threads()} threads): {per_step:.3f} s/step, {args.crops / per_step:.1f} crops/s"
    )


if __name__ == "__main__":
    main()
