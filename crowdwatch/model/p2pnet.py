"""P2PNet at stride 8: VGG16 backbone, a two-level FPN neck and two point heads.

The network maps a normalised image batch to per-candidate logits and points. Preprocessing
(:mod:`crowdwatch.model.preprocess`) and decoding (:mod:`crowdwatch.model.postprocess`) sit beside it;
the backbone is built in :mod:`crowdwatch.model.backbone`, the candidate layout and cell centres in
:mod:`crowdwatch.model.anchors`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from crowdwatch.model.anchors import candidate_layout, cell_centres
from crowdwatch.model.arch import (
    C4_INDEX,
    DEFAULT_NUM_CANDIDATES,
    HEAD_HIDDEN_LAYERS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    NECK_CHANNELS,
    REGRESSION_SCALE,
    SIZE_DIVISOR,
)
from crowdwatch.model.backbone import build_backbone

#: The architecture's numbers live in the torch-free :mod:`crowdwatch.model.arch`; re-exported here.
__all__ = [
    "C4_INDEX",
    "DEFAULT_NUM_CANDIDATES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NECK_CHANNELS",
    "REGRESSION_SCALE",
    "SIZE_DIVISOR",
    "Head",
    "Neck",
    "P2PNet",
]


class Neck(nn.Module):
    """Small FPN: 1x1 lateral convs on C4 and C5, C5 upsampled x2 and added, then a 3x3 conv."""

    def __init__(self, channels: int = NECK_CHANNELS) -> None:
        super().__init__()
        self.lateral4 = nn.Conv2d(512, channels, kernel_size=1)
        self.lateral5 = nn.Conv2d(512, channels, kernel_size=1)
        self.smooth = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, c4: torch.Tensor, c5: torch.Tensor) -> torch.Tensor:
        top_down = F.interpolate(self.lateral5(c5), scale_factor=2.0, mode="nearest")
        out: torch.Tensor = self.smooth(self.lateral4(c4) + top_down)
        return out


class Head(nn.Module):
    """Two 3x3 conv + ReLU layers and a 3x3 output conv with ``out_channels`` channels."""

    def __init__(self, out_channels: int, channels: int = NECK_CHANNELS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(HEAD_HIDDEN_LAYERS):
            layers += [nn.Conv2d(channels, channels, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.output = nn.Conv2d(channels, out_channels, kernel_size=3, padding=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.output(self.body(features))
        return out


class P2PNet(nn.Module):
    """Point-based crowd localization network (Song et al., ICCV 2021) at stride 8.

    Args:
        num_candidates: N, the number of candidate points each 8x8 cell proposes.
        regression_scale: raw regression outputs times this are pixel offsets.
    """

    def __init__(
        self, *, num_candidates: int = DEFAULT_NUM_CANDIDATES, regression_scale: float = REGRESSION_SCALE
    ) -> None:
        super().__init__()
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be at least 1, but got {num_candidates}")
        self.num_candidates = num_candidates
        self.regression_scale = float(regression_scale)
        self.backbone = build_backbone()
        self.neck = Neck()
        self.regression = Head(2 * num_candidates)
        self.classification = Head(num_candidates)
        # Start every candidate at its place in the cell layout: with the shift folded into the bias,
        # the head's output stays "offset from the cell centre" exactly.
        with torch.no_grad():
            shift = candidate_layout(num_candidates).reshape(-1)
            bias = self.regression.output.bias
            assert bias is not None  # nn.Conv2d has a bias unless built with bias=False
            bias.copy_(shift / self.regression_scale)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the network.

        Args:
            images: (B, 3, H, W) normalised RGB, H and W multiples of 16.

        Returns:
            "logits": (B, M) confidence logit per candidate, M = H/8 * W/8 * N, float32;
            "offsets": (B, M, 2) (dx, dy) in pixels from the candidate's cell centre, float32;
            "points": (B, M, 2) (x, y) in input pixels, float32.
            Candidates are ordered by cell, row-major, then by candidate index k.
        """
        batch, _, height, width = images.shape
        if height % SIZE_DIVISOR or width % SIZE_DIVISOR:
            raise ValueError(
                f"input height and width must be multiples of {SIZE_DIVISOR}, but got {height}x{width}"
            )
        c4 = self.backbone[: C4_INDEX + 1](images)
        c5 = self.backbone[C4_INDEX + 1 :](c4)
        features = self.neck(c4, c5)
        feat_h, feat_w = features.shape[-2:]
        n = self.num_candidates
        # Permute regression output from (B, 2N, h, w) to (B, h*w*N, 2): channel 2k is x, 2k+1 is y.
        offsets = self.regression(features).float().permute(0, 2, 3, 1).reshape(batch, -1, 2)
        offsets = offsets * self.regression_scale
        # Permute classification output from (B, N, h, w) to (B, h*w*N).
        logits = self.classification(features).float().permute(0, 2, 3, 1).reshape(batch, -1)
        centres = cell_centres(feat_h, feat_w, n, offsets.device, offsets.dtype)
        return {"logits": logits, "offsets": offsets, "points": centres + offsets}
