"""Where P2PNet's candidate points start: the layout of the candidates inside a cell, and the cell centres.

Every 8x8 cell of the input proposes N candidate points. Each starts at a fixed shift from its cell's
centre (the published code's "anchor points"); the regression head predicts the offset from the centre.
The same layout serves new networks (:func:`candidate_layout`) and the import of published checkpoints,
whose anchor grid is given as rows x columns (:func:`grid_layout`).
"""

from __future__ import annotations

import functools
import math

import torch

from crowdwatch.model.arch import STRIDE

__all__ = ["STRIDE", "candidate_layout", "cell_centres", "grid_layout"]


def grid_layout(rows: int, cols: int, stride: int = STRIDE) -> torch.Tensor:
    """Shift (dx, dy) of each point of a ``rows`` x ``cols`` grid from the cell centre, (rows * cols, 2).

    The points tile the cell, x fastest, each at the centre of its sub-cell; float64. For a 2x2 grid
    this is the published (-2,-2), (+2,-2), (-2,+2), (+2,+2).
    """
    xs = (torch.arange(cols, dtype=torch.float64) + 0.5) * (stride / cols) - stride / 2
    ys = (torch.arange(rows, dtype=torch.float64) + 0.5) * (stride / rows) - stride / 2
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)


def candidate_layout(num_candidates: int, stride: int = STRIDE) -> torch.Tensor:
    """Initial (dx, dy) shift of each candidate from its cell centre, shape (N, 2), float32.

    The N candidates tile the cell on a grid of ``rows = floor(sqrt(N))`` rows and
    ``cols = ceil(N / rows)`` columns (:func:`grid_layout`); surplus grid positions are left out.
    """
    if num_candidates < 1:
        raise ValueError(f"num_candidates must be at least 1, but got {num_candidates}")
    rows = math.isqrt(num_candidates)
    cols = math.ceil(num_candidates / rows)
    return grid_layout(rows, cols, stride)[:num_candidates].float()


@functools.lru_cache(maxsize=64)
def cell_centres(
    feat_h: int, feat_w: int, num_candidates: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Centres of every candidate's cell in input pixels, shape (feat_h * feat_w * N, 2).

    Order: cells row-major (row i, then column j), then candidate k, the same order as the heads'
    flattened outputs. Cached per (size, N, device, dtype); callers must not modify the result.
    """
    ys = (torch.arange(feat_h, device=device, dtype=dtype) + 0.5) * STRIDE
    xs = (torch.arange(feat_w, device=device, dtype=dtype) + 0.5) * STRIDE
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    centres = torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 1, 2)
    return centres.expand(-1, num_candidates, 2).reshape(-1, 2)
