"""P2PNet, preprocessing, decoding and the Predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.model_builders import hand_set_net

from crowdwatch.errors import UsageError
from crowdwatch.model import P2PNet, Predictor, Preprocessor, decode
from crowdwatch.model.anchors import STRIDE, candidate_layout, cell_centres
from crowdwatch.model.checkpoint import CheckpointMeta
from crowdwatch.model.postprocess import sigmoid
from crowdwatch.model.preprocess import InputGeometry, padded_size

OFFSETS_4 = [(-3.0, -1.5), (2.5, -2.0), (-1.0, 3.25), (3.5, 2.0)]


def make_predictor(net: P2PNet, **kwargs) -> Predictor:
    meta = CheckpointMeta(num_candidates=net.num_candidates)
    kwargs.setdefault("precision", "fp32")
    return Predictor(net, meta, device="cpu", **kwargs)


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_layout_tiles_the_cell(n: int) -> None:
    layout = candidate_layout(n)
    assert layout.shape == (n, 2)
    assert torch.all(layout.abs() < STRIDE / 2)
    assert len({tuple(p) for p in layout.tolist()}) == n
    if n == 4:
        assert layout.tolist() == [[-2, -2], [2, -2], [-2, 2], [2, 2]]


@pytest.mark.parametrize("hw", [(16, 16), (32, 48), (64, 96), (128, 80)])
@pytest.mark.parametrize("n", [1, 4])
def test_forward_shapes(hw: tuple[int, int], n: int) -> None:
    net = P2PNet(num_candidates=n).eval()
    with torch.inference_mode():
        out = net(torch.randn(2, 3, *hw))
    m = (hw[0] // 8) * (hw[1] // 8) * n
    assert out["logits"].shape == (2, m)
    assert out["points"].shape == (2, m, 2) and out["offsets"].shape == (2, m, 2)
    assert out["logits"].dtype == torch.float32
    assert not torch.isnan(out["logits"]).any() and not torch.isnan(out["points"]).any()


def test_forward_refuses_size_not_multiple_of_16() -> None:
    with pytest.raises(ValueError, match="multiples of 16"):
        P2PNet()(torch.randn(1, 3, 24, 32))


@pytest.mark.parametrize("hw", [(1, 1), (17, 33), (100, 75), (360, 640), (47, 16)])
def test_predictor_handles_any_size(hw: tuple[int, int]) -> None:
    # Sizes that are not multiples of 16 are padded; nothing crashes and points stay in the image.
    predictor = make_predictor(hand_set_net(OFFSETS_4, [True] * 4))
    (pred,) = predictor.predict([random_image(*hw)])
    h, w = hw
    assert pred.points.shape == (pred.count, 2) and pred.scores.shape == (pred.count,)
    assert np.all(pred.points[:, 0] <= w) and np.all(pred.points[:, 1] <= h)
    assert np.all(pred.points >= 0)


def test_decoding_with_hand_set_weights_gives_known_points() -> None:
    # Only candidate 1 is positive: one point per cell at centre + OFFSETS_4[1].
    net = hand_set_net(OFFSETS_4, [False, True, False, False])
    predictor = make_predictor(net)
    h, w = 48, 64
    (pred,) = predictor.predict([random_image(h, w)])
    ys, xs = np.meshgrid((np.arange(h // 8) + 0.5) * 8, (np.arange(w // 8) + 0.5) * 8, indexing="ij")
    expected = np.stack([xs.ravel() + 2.5, ys.ravel() - 2.0], axis=1)
    # dy = -2 puts the top row's points at y = 2: all still inside the image.
    assert pred.count == (h // 8) * (w // 8)
    np.testing.assert_allclose(pred.points, expected, atol=1e-4)
    assert np.all(pred.scores > 0.99)


def test_points_in_padding_are_dropped() -> None:
    # 20x20 is padded to 32x32: cells in rows/cols 3 lie entirely in the padding.
    net = hand_set_net([(0.0, 0.0)], [True])
    (pred,) = make_predictor(net).predict([random_image(20, 20)])
    # Cell centres at 4, 12, 20 are inside [0, 20]; 28 is not.
    assert pred.count == 9
    assert set(np.unique(pred.points[:, 0]).tolist()) == {4.0, 12.0, 20.0}


@pytest.mark.parametrize(("source_hw", "longest"), [((100, 60), 50), ((90, 200), 64), ((480, 640), 320)])
def test_resize_is_undone_exactly(source_hw: tuple[int, int], longest: int) -> None:
    net = hand_set_net([(1.25, -0.75)], [True])
    predictor = make_predictor(net, longest_side=longest)
    (pred,) = predictor.predict([random_image(*source_hw)])
    geo = Preprocessor(longest_side=longest).geometry(*source_hw)
    assert max(geo.resized_hw) == longest
    rh, rw = geo.resized_hw
    ys, xs = np.meshgrid(
        (np.arange(-(-rh // 8)) + 0.5) * 8 - 0.75, (np.arange(-(-rw // 8)) + 0.5) * 8 + 1.25, indexing="ij"
    )
    inside = (xs <= rw) & (ys <= rh) & (ys >= 0)
    expected = np.stack([xs[inside] / geo.scale_x, ys[inside] / geo.scale_y], axis=1)
    np.testing.assert_allclose(pred.points, expected.astype(np.float32), rtol=1e-6, atol=1e-4)


def test_decode_maps_input_points_back_by_geometry() -> None:
    geo = InputGeometry(source_hw=(300, 400), resized_hw=(150, 200))
    points = torch.tensor([[[10.0, 20.0], [199.0, 149.0], [201.0, 10.0]]])
    logits = torch.tensor([[5.0, 5.0, 5.0]])
    (pred,) = decode(logits, points, [geo], threshold=0.5)
    # The third point lies in the padding (x > 200) and is dropped.
    np.testing.assert_allclose(pred.points, [[20.0, 40.0], [398.0, 298.0]])


def test_batch_of_mixed_sizes_matches_singles_for_same_size_images() -> None:
    predictor = make_predictor(P2PNet().eval())
    a, b = random_image(64, 96, seed=1), random_image(64, 96, seed=2)
    together = predictor.predict([a, b])
    alone = [predictor.predict([a])[0], predictor.predict([b])[0]]
    for x, y in zip(together, alone, strict=True):
        assert x.count == y.count
        np.testing.assert_allclose(x.points, y.points, atol=1e-3)
    mixed = predictor.predict([random_image(40, 50), random_image(70, 30)])
    assert len(mixed) == 2


def test_preprocessor_pads_with_zeros_after_normalisation_and_converts_gray() -> None:
    pre = Preprocessor()
    gray = np.full((20, 30), 255, dtype=np.uint8)
    batch, geos = pre([gray, random_image(40, 17)])
    assert batch.shape == (2, 3, 48, 32)
    assert geos[0].source_hw == (20, 30)
    assert torch.all(batch[0, :, 20:, :] == 0) and torch.all(batch[0, :, :, 30:] == 0)
    # White pixels normalise to (1 - mean) / std per RGB channel.
    expected = torch.tensor([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225])
    torch.testing.assert_close(batch[0, :, 0, 0], expected)
    assert padded_size(17, 33) == (32, 48)


def test_numpy_batch_is_the_torch_batch_bit_for_bit() -> None:
    # The openvino backend's batches (numpy, no torch) and the torch backend's are the same floats.
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    crops = [image, image[10:50, 20:84], rng.integers(0, 256, (33, 17, 3), dtype=np.uint8)]  # a view too
    pre = Preprocessor(mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    got, want = pre.array(crops), pre.batch(crops).numpy()
    assert got.dtype == np.float32 and got.shape == want.shape == (3, 3, 80, 96)
    np.testing.assert_array_equal(got, want)


def test_decode_takes_numpy_and_torch_alike() -> None:
    rng = np.random.default_rng(6)
    logits = rng.normal(0, 3, (2, 40)).astype(np.float32)
    points = rng.uniform(-4, 40, (2, 40, 2)).astype(np.float32)
    geos = [InputGeometry(source_hw=(64, 64), resized_hw=(32, 32))] * 2
    for a, b in zip(
        decode(logits, points, geos, 0.5),
        decode(torch.from_numpy(logits), torch.from_numpy(points), geos, 0.5),
        strict=True,
    ):
        np.testing.assert_array_equal(a.points, b.points)
        np.testing.assert_array_equal(a.scores, b.scores)
        assert a.scores.dtype == np.float32 and a.count > 0 and (a.scores > 0.5).all()
    # numpy's sigmoid is torch's to float32 rounding (a few units in the last place of values <= 1)
    want = torch.sigmoid(torch.from_numpy(logits)).numpy()
    np.testing.assert_allclose(sigmoid(logits), want, rtol=0, atol=4 * np.finfo(np.float32).eps)


def test_bgr_is_turned_into_rgb() -> None:
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    image[..., 2] = 255  # red in BGR
    batch, _ = Preprocessor(mean=(0, 0, 0), std=(1, 1, 1))([image])
    assert batch[0, 0].min() == 1.0 and batch[0, 1].max() == 0.0 and batch[0, 2].max() == 0.0


def test_no_autograd_state_under_inference() -> None:
    predictor = make_predictor(P2PNet())
    batch, _ = predictor.preprocess([random_image(32, 32)])
    out = predictor.forward(batch)
    for tensor in out.values():
        assert tensor.grad_fn is None and not tensor.requires_grad
        assert tensor.is_inference()
    assert all(not p.requires_grad for p in predictor.net.parameters())


def test_cell_centres_are_cached_per_size_and_device() -> None:
    a = cell_centres(4, 6, 4, torch.device("cpu"), torch.float32)
    assert a is cell_centres(4, 6, 4, torch.device("cpu"), torch.float32)
    assert a.shape == (4 * 6 * 4, 2)
    assert a[0].tolist() == [4.0, 4.0] and a[4].tolist() == [12.0, 4.0]


def test_precision_policy_on_this_cpu() -> None:
    predictor = make_predictor(P2PNet(), precision="auto")
    assert predictor.precision in ("bf16", "fp32")
    with pytest.raises(UsageError, match="fp16 needs a CUDA GPU"):
        make_predictor(P2PNet(), precision="fp16")
    with pytest.raises(UsageError, match="precision must be one of"):
        make_predictor(P2PNet(), precision="int8")


def test_bf16_runs_and_returns_float32_points() -> None:
    predictor = make_predictor(hand_set_net(OFFSETS_4, [True, False, True, False]), precision="bf16")
    (pred,) = predictor.predict([random_image(64, 64)])
    assert pred.points.dtype == np.float32 and pred.count == 2 * 64


@pytest.mark.cuda
def test_fp16_on_cuda_agrees_with_fp32() -> None:
    net = P2PNet().eval()
    fp32 = Predictor(net, CheckpointMeta(num_candidates=4), device="cuda", precision="fp32")
    batch, _ = fp32.preprocess([random_image(128, 128)], device="cuda")
    ref = fp32.forward(batch)
    fp16 = Predictor(P2PNet().eval(), CheckpointMeta(num_candidates=4), device="cuda", precision="fp16")
    fp16.net.load_state_dict(net.state_dict())
    out = fp16.forward(batch)
    assert out["logits"].dtype == torch.float32
    torch.testing.assert_close(out["points"], ref["points"], atol=0.5, rtol=0.0)
