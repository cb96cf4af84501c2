"""Tiles: how an image too large for one forward pass is cut, and which tile answers for each point.

The network's activation memory grows with its input area: at its peak it holds VGG16's first two
feature maps, 64 float32 channels each at full resolution, 512 bytes per input pixel (about 520 measured
on a CPU). An input over the budget is cut into overlapping tiles that run one at a time
(:func:`plan_tiles`).

- Tiles start at multiples of 16 (:data:`~crowdwatch.model.arch.SIZE_DIVISOR`), so every tile's
  stride-8 cells and stride-16 pooling windows are the whole image's own: away from a tile's edges its
  outputs are the whole image's outputs.
- Each tile has a core; tiles' cores partition the image (half-open intervals, the outermost cores
  reach to infinity). A point is kept from the one tile whose core holds it, so none is counted twice
  and none is lost. Between a core's inner edge and its tile's edge lies ``margin`` pixels of context.
- The network's receptive field is about 290 px wide (VGG16's C5 sees 196 px; the neck's 3x3 conv on
  the upsampled C5 and the heads' three 3x3 convs at stride 8 add about 90), so a margin of half that
  plus the largest point offset would make the tiles' points the whole image's, to rounding. The
  default is a little smaller, because the far edge of the receptive field barely matters (the README's
  "Large images" gives the measured differences).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crowdwatch.model.arch import SIZE_DIVISOR

#: Default budget of one forward pass, in network-input pixels: 2048 x 2048 (about 2.2 GB of
#: activations on a CPU in fp32). Larger images are tiled; two padded 1080p frames fit in one batch.
DEFAULT_TILE_PIXELS = 2048 * 2048
#: Default context, in input pixels, between a tile's core and the tile's inner edges.
DEFAULT_TILE_MARGIN = 128


@dataclass(frozen=True)
class Span:
    """One tile's extent along one axis: the crop ``[start, end)`` and its core ``[core_start, core_end)``."""

    start: int
    end: int
    core_start: float
    core_end: float

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def slice(self) -> slice:
        return slice(self.start, self.end)


@dataclass(frozen=True)
class Tile:
    """A crop of the (resized) image and the core region whose points it answers for."""

    rows: Span
    cols: Span

    def keep_core(self, points: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The points ((K, 2) x, y in this tile's pixels) that lie in its core, moved to whole-input
        pixels (float64), with their scores."""
        moved = points.astype(np.float64) + np.array((self.cols.start, self.rows.start), np.float64)
        x, y = moved[:, 0], moved[:, 1]
        core = (
            (x >= self.cols.core_start)
            & (x < self.cols.core_end)
            & (y >= self.rows.core_start)
            & (y < self.rows.core_end)
        )
        return moved[core], scores[core]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def tile_side(tile_pixels: int) -> int:
    """The side of the square tiles that fit ``tile_pixels``: a multiple of 16, at least 16."""
    return max(SIZE_DIVISOR, math.isqrt(tile_pixels) // SIZE_DIVISOR * SIZE_DIVISOR)


def axis_spans(length: int, tile: int, margin: int) -> list[Span]:
    """Cut ``[0, length)`` into the fewest spans of at most ``tile`` that overlap by ``2 * margin``.

    Starts are multiples of 16 and evenly spaced; the last span ends at ``length``. Cores meet halfway
    into each overlap, so every core edge between two spans is ``margin`` from both spans' ends.
    """
    if length < 1:
        raise ValueError(f"length must be at least 1, but got {length}")
    overlap = 2 * margin
    if tile % SIZE_DIVISOR or overlap % SIZE_DIVISOR or not 0 <= overlap < tile:
        raise ValueError(
            f"tile must be a multiple of {SIZE_DIVISOR} larger than 2 * margin, and margin a multiple of "
            f"{SIZE_DIVISOR // 2}, but got tile {tile}, margin {margin}"
        )
    if length <= tile:
        return [Span(0, length, -math.inf, math.inf)]
    count = _ceil_div(length - overlap, tile - overlap)
    # The even step, rounded up to a multiple of 16: still at most tile - overlap, which is one too.
    step = _ceil_div(_ceil_div(length - overlap, count), SIZE_DIVISOR) * SIZE_DIVISOR
    spans = []
    for k in range(count):
        start = k * step
        end = min(start + step + overlap, length)
        core_start = -math.inf if k == 0 else start + margin
        core_end = math.inf if k == count - 1 else start + step + margin
        spans.append(Span(start, end, core_start, core_end))
    return spans


def check_budget(tile_pixels: int, margin: int) -> None:
    """ValueError unless tiles of ``tile_pixels`` keep a core inside ``margin`` (a multiple of 8) on
    each side."""
    if margin < 0 or margin % (SIZE_DIVISOR // 2):
        raise ValueError(f"the tile margin must be a multiple of {SIZE_DIVISOR // 2} px, but got {margin}")
    if tile_side(tile_pixels) <= 2 * margin or tile_pixels < SIZE_DIVISOR**2:
        raise ValueError(
            f"tiles of {tile_side(tile_pixels)} px (tile_pixels {tile_pixels:,}) leave no core inside a "
            f"margin of {margin} px on each side"
        )


def plan_tiles(height: int, width: int, *, tile_pixels: int, margin: int) -> list[Tile]:
    """The tiles of a ``height`` x ``width`` input: one tile (the whole input) when its padded area fits
    ``tile_pixels``, else square tiles of :func:`tile_side`, row by row."""
    check_budget(tile_pixels, margin)
    padded = _ceil_div(height, SIZE_DIVISOR) * _ceil_div(width, SIZE_DIVISOR) * SIZE_DIVISOR**2
    if padded <= tile_pixels:
        return [Tile(Span(0, height, -math.inf, math.inf), Span(0, width, -math.inf, math.inf))]
    side = tile_side(tile_pixels)
    return [Tile(r, c) for r in axis_spans(height, side, margin) for c in axis_spans(width, side, margin)]
