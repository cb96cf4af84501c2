"""Builders of P2PNet instances with hand-set heads, whose outputs are known in advance."""

from __future__ import annotations

import torch

from crowdwatch.model.p2pnet import P2PNet

POSITIVE_LOGIT = 20.0
NEGATIVE_LOGIT = -20.0


def hand_set_net(offsets: list[tuple[float, float]], positive: list[bool], *, seed: int = 0) -> P2PNet:
    """A P2PNet whose heads ignore the image: candidate k of every cell sits at ``offsets[k]`` from the
    cell centre and scores sigmoid(+20) if ``positive[k]`` else sigmoid(-20).

    The backbone and neck keep random weights: the last convs' weights are zero, so the output is
    exactly the bias.
    """
    torch.manual_seed(seed)
    net = P2PNet(num_candidates=len(offsets))
    with torch.no_grad():
        reg, cls = net.regression.output, net.classification.output
        reg.weight.zero_()
        reg.bias.copy_(torch.tensor(offsets, dtype=torch.float32).reshape(-1) / net.regression_scale)
        cls.weight.zero_()
        cls.bias.copy_(torch.tensor([POSITIVE_LOGIT if p else NEGATIVE_LOGIT for p in positive]))
    return net.eval()
