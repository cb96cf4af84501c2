"""The loss trains both heads and weighs background candidates at 0.5."""

import math

import torch

from crowdwatch.model.p2pnet import P2PNet
from crowdwatch.train.loss import BACKGROUND_WEIGHT, POINT_COEF, p2p_loss
from crowdwatch.train.matcher import match_batch


def test_both_heads_receive_gradient():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = P2PNet()
    out = net(torch.randn(2, 3, 32, 32))
    targets = [torch.tensor([[5.0, 7.0], [20.0, 21.0]]), torch.zeros(0, 2)]
    losses = p2p_loss(
        out["logits"], out["points"], targets, match_batch(out["logits"], out["points"], targets)
    )
    losses["total"].backward()
    for head in (net.classification, net.regression):
        grad = head.output.weight.grad
        assert grad is not None and grad.abs().sum() > 0, f"{head} got no gradient"
    assert net.backbone[0].weight.grad.abs().sum() > 0


def test_values_match_hand_computation():
    logits = torch.tensor([[0.0, 2.0, -1.0]])
    points = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [9.0, 9.0]]])
    targets = [torch.tensor([[0.0, 0.0]])]
    matches = [(torch.tensor([1]).numpy(), torch.tensor([0]).numpy())]
    losses = p2p_loss(logits, points, targets, matches)

    def bce(x, y):
        p = 1 / (1 + math.exp(-x))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    w = BACKGROUND_WEIGHT
    cls = (w * bce(0.0, 0) + 1.0 * bce(2.0, 1) + w * bce(-1.0, 0)) / (w + 1.0 + w)
    assert losses["cls"].item() == torch.tensor(cls).float().item() or abs(losses["cls"].item() - cls) < 1e-6
    assert abs(losses["point"].item() - 25.0) < 1e-5  # 3^2 + 4^2, one ground-truth point
    assert abs(losses["total"].item() - (cls + POINT_COEF * 25.0)) < 1e-6


def test_no_ground_truth_is_all_background_and_finite():
    logits = torch.zeros(1, 4, requires_grad=True)
    points = torch.zeros(1, 4, 2, requires_grad=True)
    losses = p2p_loss(logits, points, [torch.zeros(0, 2)], [(torch.zeros(0, dtype=torch.long).numpy(),) * 2])
    losses["total"].backward()
    assert losses["point"].item() == 0.0
    assert abs(losses["cls"].item() - math.log(2)) < 1e-6
    assert (logits.grad > 0).all()  # pushes every logit towards background
