"""`crowdwatch convert` is exact: a checkpoint in the published P2PNet layout, converted, computes the
same points and scores as the published model.

The reference forward below is written from the published definition with functional ops (vgg16_bn
or vgg16 bodies with BatchNorm unfolded, its FPN, heads of conv1 -> ReLU -> conv2 -> ReLU -> output,
softmax over the 2 classes, anchors + 100 x regression output); it shares no code with crowdwatch.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from crowdwatch.errors import CheckpointError
from crowdwatch.model import load_checkpoint
from crowdwatch.model.published import convert_checkpoint

# Published bodies: ("conv", index inside the body, in, out) or ("pool",).
BODIES = {
    "vgg16_bn": [
        [("conv", 0, 3, 64), ("conv", 3, 64, 64), ("pool",), ("conv", 7, 64, 128), ("conv", 10, 128, 128)],
        [("pool",), ("conv", 1, 128, 256), ("conv", 4, 256, 256), ("conv", 7, 256, 256)],
        [("pool",), ("conv", 1, 256, 512), ("conv", 4, 512, 512), ("conv", 7, 512, 512)],
        [("pool",), ("conv", 1, 512, 512), ("conv", 4, 512, 512), ("conv", 7, 512, 512)],
    ],
    "vgg16": [
        [("conv", 0, 3, 64), ("conv", 2, 64, 64), ("pool",), ("conv", 5, 64, 128), ("conv", 7, 128, 128)],
        [("pool",), ("conv", 1, 128, 256), ("conv", 3, 256, 256), ("conv", 5, 256, 256)],
        [("pool",), ("conv", 1, 256, 512), ("conv", 3, 512, 512), ("conv", 5, 512, 512)],
        [("pool",), ("conv", 1, 512, 512), ("conv", 3, 512, 512), ("conv", 5, 512, 512)],
    ],
}
ANCHORS = torch.tensor([[-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0], [2.0, 2.0]])


def _conv(gen: torch.Generator, cin: int, cout: int, k: int, gain: float = 1.0) -> dict[str, torch.Tensor]:
    std = gain * (2.0 / (cin * k * k)) ** 0.5
    return {
        "weight": torch.randn(cout, cin, k, k, generator=gen) * std,
        "bias": torch.randn(cout, generator=gen) * 0.05,
    }


def published_state_dict(variant: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights and random BatchNorm statistics in the published key layout (123 tensors for bn)."""
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def put(prefix: str, tensors: dict[str, torch.Tensor]) -> None:
        sd.update({f"{prefix}.{k}": v for k, v in tensors.items()})

    for b, body in enumerate(BODIES[variant], start=1):
        for op in body:
            if op[0] != "conv":
                continue
            _, idx, cin, cout = op
            put(f"backbone.body{b}.{idx}", _conv(gen, cin, cout, 3))
            if variant == "vgg16_bn":
                put(
                    f"backbone.body{b}.{idx + 1}",
                    {
                        "weight": torch.rand(cout, generator=gen) + 0.5,
                        "bias": torch.randn(cout, generator=gen) * 0.1,
                        "running_mean": torch.randn(cout, generator=gen) * 0.2,
                        "running_var": torch.rand(cout, generator=gen) * 1.5 + 0.5,
                        "num_batches_tracked": torch.tensor(1000),
                    },
                )
    for name, cin, k in (
        ("P5_1", 512, 1),
        ("P5_2", 256, 3),
        ("P4_1", 512, 1),
        ("P4_2", 256, 3),
        ("P3_1", 256, 1),
        ("P3_2", 256, 3),
    ):
        put(f"fpn.{name}", _conv(gen, cin, 256, k))
    for head in ("regression", "classification"):
        for i in range(1, 5):
            put(f"{head}.conv{i}", _conv(gen, 256, 256, 3))
        # Small regression outputs (offsets of a few pixels after x100), as in a trained model.
        put(f"{head}.output", _conv(gen, 256, 8, 3, gain=0.03 if head == "regression" else 1.0))
    return sd


def reference_forward(
    sd: dict[str, torch.Tensor], variant: str, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The published P2PNet forward; returns (points (B, M, 2), p(person) (B, M))."""

    def conv(t: torch.Tensor, prefix: str, padding: int) -> torch.Tensor:
        return F.conv2d(t, sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], padding=padding)

    feats = []
    for b, body in enumerate(BODIES[variant], start=1):
        for op in body:
            if op[0] == "pool":
                x = F.max_pool2d(x, kernel_size=2, stride=2)
                continue
            idx = op[1]
            x = conv(x, f"backbone.body{b}.{idx}", 1)
            if variant == "vgg16_bn":
                bn = f"backbone.body{b}.{idx + 1}"
                x = F.batch_norm(
                    x,
                    sd[f"{bn}.running_mean"],
                    sd[f"{bn}.running_var"],
                    sd[f"{bn}.weight"],
                    sd[f"{bn}.bias"],
                    training=False,
                    eps=1e-5,
                )
            x = F.relu(x)
        feats.append(x)
    c4, c5 = feats[2], feats[3]
    p5 = conv(c5, "fpn.P5_1", 0)
    p4 = conv(c4, "fpn.P4_1", 0) + F.interpolate(p5, scale_factor=2, mode="nearest")
    p4 = conv(p4, "fpn.P4_2", 1)

    def head(name: str) -> torch.Tensor:
        h = F.relu(conv(p4, f"{name}.conv1", 1))
        h = F.relu(conv(h, f"{name}.conv2", 1))
        return conv(h, f"{name}.output", 1)

    batch, _, fh, fw = p4.shape
    regression = head("regression").permute(0, 2, 3, 1).reshape(batch, -1, 2) * 100
    classification = head("classification").permute(0, 2, 3, 1).reshape(batch, -1, 2)
    prob = classification.softmax(-1)[..., 1]
    ys, xs = torch.meshgrid((torch.arange(fh) + 0.5) * 8, (torch.arange(fw) + 0.5) * 8, indexing="ij")
    centres = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)
    anchors = (centres[:, None, :] + ANCHORS[None, :, :]).reshape(-1, 2)
    return anchors[None] + regression, prob


def _save_published(path: Path, variant: str) -> dict[str, torch.Tensor]:
    sd = published_state_dict(variant)
    torch.save({"model": sd}, path)
    return sd


@pytest.mark.parametrize("variant", ["vgg16_bn", "vgg16"])
def test_conversion_is_exact(tmp_path: Path, variant: str) -> None:
    sd = _save_published(tmp_path / "published.pth", variant)
    if variant == "vgg16_bn":
        assert len(sd) == 123 and sum(v.numel() for v in sd.values()) > 21_000_000
    convert_checkpoint(tmp_path / "published.pth", tmp_path / "ours.pt")
    net, meta = load_checkpoint(tmp_path / "ours.pt")
    assert meta.provenance["source_backbone"] == variant
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(5))
    # Both sides in float64: the check is on the conversion's arithmetic (BN folding, x100, anchors),
    # not on how a given CPU's fp32 conv kernels round (1.5e-5 apart on an AMD Zen 3 in fp32).
    sd64 = {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}
    with torch.inference_mode():
        ref_points, ref_prob = reference_forward(sd64, variant, x.double())
        out = net.double()(x.double())
    assert out["points"].dtype == torch.float32
    # The candidates are spread over the score range, so the check covers more than saturated ones.
    assert ((ref_prob > 0.1) & (ref_prob < 0.9)).float().mean() > 0.2
    assert torch.max(torch.abs(out["points"] - ref_points)) < 1e-3
    assert torch.max(torch.abs(torch.sigmoid(out["logits"]) - ref_prob)) < 1e-5


def test_convert_cli(tmp_path: Path, python: str, cli_env: dict) -> None:
    _save_published(tmp_path / "published.pth", "vgg16_bn")
    proc = subprocess.run(
        [
            python,
            "-m",
            "crowdwatch",
            "convert",
            str(tmp_path / "published.pth"),
            str(tmp_path / "ours.pt"),
            "--half",
        ],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "dropped 14 tensors" in proc.stderr and "fpn.P3_1" in proc.stderr
    _, meta = load_checkpoint(tmp_path / "ours.pt")
    assert meta.provenance["source_file"] == "published.pth"
    assert (tmp_path / "ours.pt").stat().st_size < 40e6


def test_convert_names_unknown_and_missing_tensors(tmp_path: Path) -> None:
    sd = published_state_dict("vgg16")
    sd["fpn.P6.weight"] = torch.zeros(1)
    torch.save({"model": sd}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"unexpected tensors .*fpn\.P6\.weight"):
        convert_checkpoint(tmp_path / "extra.pth", tmp_path / "out.pt")
    del sd["fpn.P6.weight"], sd["fpn.P4_2.bias"]
    torch.save({"model": sd}, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"lacks tensor fpn\.P4_2\.bias"):
        convert_checkpoint(tmp_path / "missing.pth", tmp_path / "out.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a checkpoint of the published P2PNet code"):
        convert_checkpoint(tmp_path / "other.pth", tmp_path / "out.pt")
