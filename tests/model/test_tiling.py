"""Tiling: the plan of tiles, the merge of their points, and the Predictor's bound on one forward pass."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from crowdwatch.errors import UsageError
from crowdwatch.model import Predictor
from crowdwatch.model.checkpoint import CheckpointMeta
from crowdwatch.model.p2pnet import SIZE_DIVISOR
from crowdwatch.model.tiling import axis_spans, plan_tiles, tile_side

BRIGHT = 1.0  # a normalised red value: white is +2.25, black -2.12, the padding 0


class MarkerBackend:
    """A stand-in network: one candidate per input pixel, at the pixel's corner (x, y), positive where
    the pixel is white. Its answer at a pixel depends on that pixel alone, so tiles must give exactly the
    whole image's points: any point lost or doubled is the merge's fault. It records each batch's shape.
    """

    name = "markers"
    device = torch.device("cpu")
    precision = "fp32"

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        self.shapes.append(tuple(batch.shape))
        b, _, h, w = batch.shape
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        points = torch.stack([xs, ys], dim=-1).reshape(1, -1, 2).float().expand(b, -1, -1)
        logits = torch.where(batch[:, 0].reshape(b, -1) > BRIGHT, 20.0, -20.0)
        return {"logits": logits, "points": points}


def marker_predictor(**kwargs: int) -> tuple[Predictor, MarkerBackend]:
    backend = MarkerBackend()
    return Predictor(backend, CheckpointMeta(num_candidates=1), **kwargs), backend


def marked_image(height: int, width: int, markers: np.ndarray) -> np.ndarray:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[markers[:, 1], markers[:, 0]] = 255
    return image


def seam_markers(height: int, width: int, *, tile_pixels: int, margin: int, seed: int) -> np.ndarray:
    """(x, y) markers at random, on every core edge and one pixel either side of it, and in the corners."""
    tiles = plan_tiles(height, width, tile_pixels=tile_pixels, margin=margin)
    edges_x, edges_y = set(), set()
    for tile, d in ((t, d) for t in tiles for d in (-1, 0, 1)):
        edges_x |= {int(e) + d for e in (tile.cols.core_start, tile.cols.core_end) if math.isfinite(e)}
        edges_y |= {int(e) + d for e in (tile.rows.core_start, tile.rows.core_end) if math.isfinite(e)}
    rng = np.random.default_rng(seed)
    xs = [*edges_x, 0, width - 1, *rng.integers(0, width, 40).tolist()]
    ys = [*edges_y, 0, height - 1, *rng.integers(0, height, 40).tolist()]
    grid = [(x, y) for x in xs for y in ys if (x in edges_x or y in edges_y or rng.random() < 0.1)]
    return np.unique(np.array(grid, dtype=np.int64), axis=0)


def as_set(points: np.ndarray) -> list[tuple[float, float]]:
    return sorted(map(tuple, points.tolist()))


@pytest.mark.parametrize("length", [1, 15, 16, 100, 255, 256, 257, 500, 1000, 3840, 4001])
@pytest.mark.parametrize(("tile", "margin"), [(256, 0), (256, 64), (128, 56), (2048, 128)])
def test_spans_cover_the_axis_with_aligned_tiles_and_cores_that_partition_it(
    length: int, tile: int, margin: int
) -> None:
    spans = axis_spans(length, tile, margin)
    assert spans[0].start == 0 and spans[-1].end == length
    assert spans[0].core_start == -math.inf and spans[-1].core_end == math.inf
    for span in spans:
        assert span.start % SIZE_DIVISOR == 0 and 0 < span.length <= tile
        assert span.core_start < span.core_end
    for left, right in itertools.pairwise(spans):
        assert left.core_end == right.core_start  # cores meet: no gap, no overlap
        # every inner core edge has `margin` pixels of context in both tiles
        assert right.core_start - right.start == margin and left.end - left.core_end >= margin
    # the fewest tiles: one fewer could not cover the axis with these overlaps
    if len(spans) > 1:
        assert (len(spans) - 1) * (tile - 2 * margin) + 2 * margin < length


def test_an_input_within_the_budget_is_one_tile_and_a_larger_one_is_tiled_within_it() -> None:
    assert len(plan_tiles(1088, 1920, tile_pixels=2048 * 2048, margin=128)) == 1
    tiles = plan_tiles(6000, 8000, tile_pixels=2048 * 2048, margin=128)
    assert len(tiles) > 1 and all(t.rows.length * t.cols.length <= 2048 * 2048 for t in tiles)
    assert tile_side(1000) == 16 * (31 // 16) and tile_side(1) == SIZE_DIVISOR


@pytest.mark.parametrize(
    ("tile_pixels", "margin", "refused"),
    [
        (10_000, 8, None),
        (2048 * 2048, 128, None),
        (300, 200, "no core"),
        (100, 0, "no core"),
        (10_000, 12, "8"),
    ],
)
def test_a_budget_that_leaves_no_core_is_refused_up_front(
    tile_pixels: int, margin: int, refused: str | None
) -> None:
    if refused is None:
        marker_predictor(tile_pixels=tile_pixels, tile_margin=margin)
    else:
        with pytest.raises(UsageError, match=refused):
            marker_predictor(tile_pixels=tile_pixels, tile_margin=margin)


@pytest.mark.parametrize(("height", "width"), [(300, 500), (129, 1000), (517, 96), (64, 64)])
def test_tiles_find_every_point_once_even_on_the_seams(height: int, width: int) -> None:
    tile_pixels, margin = 128 * 128, 24
    markers = seam_markers(height, width, tile_pixels=tile_pixels, margin=margin, seed=height)
    predictor, backend = marker_predictor(tile_pixels=tile_pixels, tile_margin=margin)
    (pred,) = predictor.predict([marked_image(height, width, markers)])
    assert as_set(pred.points) == as_set(markers.astype(np.float32))
    assert pred.count == len(markers) and pred.scores.shape == (len(markers),)
    assert all(b * h * w <= tile_pixels for b, _, h, w in backend.shapes)


def test_a_batch_is_split_and_tiled_within_the_budget_and_each_image_gets_its_own_points() -> None:
    tile_pixels, margin = 256 * 256, 32
    sizes = [(100, 120), (100, 120), (700, 300), (90, 100), (200, 200)]
    markers = [
        seam_markers(h, w, tile_pixels=tile_pixels, margin=margin, seed=i) for i, (h, w) in enumerate(sizes)
    ]
    images = [marked_image(h, w, m) for (h, w), m in zip(sizes, markers, strict=True)]
    predictor, backend = marker_predictor(tile_pixels=tile_pixels, tile_margin=margin)
    preds = predictor.predict(images)
    for pred, expected in zip(preds, markers, strict=True):
        assert as_set(pred.points) == as_set(expected.astype(np.float32))
    assert all(b * h * w <= tile_pixels for b, _, h, w in backend.shapes)
    assert backend.shapes[0] == (2, 3, 112, 128)  # the two small images share one pass
    assert sum(b for b, *_ in backend.shapes) > len(sizes)  # the tall one ran as tiles


def test_a_batch_within_the_budget_is_one_forward_pass() -> None:
    predictor, backend = marker_predictor()  # the default budget: 2048 x 2048
    frames = [np.zeros((1080, 1920, 3), dtype=np.uint8)] * 2
    predictor.predict(frames)
    assert backend.shapes == [(2, 3, 1088, 1920)]
    predictor.predict(frames * 2)  # four 1080p frames: two passes of two
    assert backend.shapes[1:] == [(2, 3, 1088, 1920)] * 2


def test_tiles_are_resized_points_mapped_back_to_source_pixels() -> None:
    # longest_side resizes first; tiles cut the resized input; points come back in source pixels
    markers = np.array([[0, 0], [398, 0], [0, 598], [200, 300], [398, 598]])
    image = marked_image(600, 400, markers)
    image = np.kron(image, np.ones((2, 2, 1), dtype=np.uint8))  # 1200 x 800: each marker now 2x2 px
    # the resize policy: a 2x shrink (INTER_AREA turns each 2x2 block back into one white pixel)
    predictor, _ = marker_predictor(longest_side=600, tile_pixels=128 * 128, tile_margin=16)
    (pred,) = predictor.predict([image])
    assert as_set(pred.points) == as_set(markers.astype(np.float32) * 2)


#: Half the network's receptive field, in input pixels: VGG16's C5 sees 196 px; the neck's 3x3 conv on
#: C5 upsampled to stride 8 reaches one C5 cell (16 px) further each way, and the heads' three 3x3 convs
#: at stride 8 another 24 px each way: 196 / 2 + 16 + 24 = 138, plus up to 8 px because the nearest
#: upsampling puts a stride-8 cell off the centre of its C5 cell.
RECEPTIVE_HALF = 146


def nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from each point of ``a`` to the nearest point of ``b`` (inf when ``b`` is empty)."""
    if len(b) == 0:
        return np.full(len(a), np.inf)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(axis=1)


@pytest.mark.data
def test_tiles_of_a_real_dense_image_give_the_whole_images_points(shared_data) -> None:
    from crowdwatch.images import read_image

    image = read_image(shared_data / "shanghaitech" / "part_A_train" / "IMG_1.jpg")[
        64:704, 128:896
    ]  # 640x768
    whole = Predictor.from_checkpoint(device="cpu", precision="fp32", tile_pixels=10**9)
    margin = whole.tile_margin  # the default
    tiled = Predictor(whole.net, whole.meta, precision="fp32", tile_pixels=512 * 512, tile_margin=margin)
    tiles = plan_tiles(*image.shape[:2], tile_pixels=tiled.tile_pixels, margin=margin)
    assert len(tiles) == 4
    (w,), (t,) = whole.predict([image]), tiled.predict([image])
    assert w.count > 500  # a dense crowd, with many heads on the seams
    # A cell whose core edge is d px away sees the whole image's pixels within `margin` + d of it, so only
    # cells within RECEPTIVE_HALF - margin of a seam can differ, and their points lie within one cell's
    # reach (2 strides) of them. Elsewhere only a candidate whose score rounds across the threshold can
    # (the tiles' convolutions sum in another order: ~1e-6).
    band = RECEPTIVE_HALF - margin + 16
    seams_x = [s.cols.core_end for s in tiles if math.isfinite(s.cols.core_end)]
    seams_y = [s.rows.core_end for s in tiles if math.isfinite(s.rows.core_end)]

    def explained(points: np.ndarray, scores: np.ndarray) -> np.ndarray:
        near_x = np.min([np.abs(points[:, 0] - s) for s in seams_x], axis=0) <= band
        near_y = np.min([np.abs(points[:, 1] - s) for s in seams_y], axis=0) <= band
        return near_x | near_y | (np.abs(scores - whole.threshold) < 1e-3)

    lost, extra = nearest(w.points, t.points) > 0.5, nearest(t.points, w.points) > 0.5
    assert (
        explained(w.points[lost], w.scores[lost]).all() and explained(t.points[extra], t.scores[extra]).all()
    )
    assert abs(t.count - w.count) <= 0.01 * w.count
    print(f"whole {w.count}, tiled {t.count}, {lost.sum()} lost and {extra.sum()} extra (all near seams)")
