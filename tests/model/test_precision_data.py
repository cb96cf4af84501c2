"""bf16 and fp32 agree on counts for real crowd images with the same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from crowdwatch.images import read_image
from crowdwatch.model import P2PNet, Predictor
from crowdwatch.model.checkpoint import DEFAULT_WEIGHTS, CheckpointMeta, load_checkpoint
from crowdwatch.model.precision import cpu_has_native_bf16


def _weights() -> tuple[P2PNet, CheckpointMeta, str]:
    if DEFAULT_WEIGHTS.exists():
        net, meta = load_checkpoint(DEFAULT_WEIGHTS)
        return net, meta, "packaged"
    # No trained weights in this checkout: random ones with the classification logits spread wide,
    # so that few candidates sit near the threshold by chance (a trained model's are spread too).
    torch.manual_seed(0)
    net = P2PNet().eval()
    with torch.no_grad():
        net.classification.output.weight.mul_(20.0)
    return net, CheckpointMeta(num_candidates=4), "random"


@pytest.mark.data
@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 (AVX512-BF16/AMX)")
def test_bf16_and_fp32_counts_agree(shared_data: Path) -> None:
    images = [
        shared_data / "mall/train/seq_000001.jpg",
        shared_data / "shanghaitech/part_B_train/IMG_1.jpg",
        shared_data / "shanghaitech/part_A_train/IMG_1.jpg",
    ]
    net, meta, kind = _weights()
    fp32 = Predictor(net, meta, device="cpu", precision="fp32", longest_side=640)
    bf16 = Predictor(net, meta, device="cpu", precision="bf16", longest_side=640)
    for path in images:
        image = read_image(path)
        a, b = fp32.predict([image])[0], bf16.predict([image])[0]
        # The same people, give or take the candidates whose score sits within bf16's rounding of
        # the threshold: at most 2% of the count (and at least 2 points of slack for small counts).
        assert abs(a.count - b.count) <= max(2, 0.02 * a.count), (path.name, kind, a.count, b.count)
        assert a.count > 0, (path.name, kind)
        if a.count and b.count:
            # Every bf16 point has an fp32 point within a pixel.
            d = np.linalg.norm(b.points[:, None, :] - a.points[None, :, :], axis=-1).min(axis=1)
            assert np.mean(d < 1.0) > 0.95
