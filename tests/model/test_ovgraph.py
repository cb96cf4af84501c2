"""The OpenVINO graph built from a checkpoint without torch (model/ovgraph.py) is P2PNet, for any N.

Random weights here (saved as float16, the packaged weights' storage); the packaged weights on real
images are compared with torch and with the exported IR in tests/model/test_backends.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from crowdwatch.model.checkpoint import load_checkpoint, save_checkpoint
from crowdwatch.model.ovgraph import parameter_shapes, read_checkpoint_arrays
from crowdwatch.model.p2pnet import P2PNet

pytest.importorskip("openvino", reason="needs the openvino extra (pip install 'crowdwatch[openvino]')")

#: How far OpenVINO's float32 outputs may lie from torch's, as a fraction of the largest output. Both
#: sum float32 products in other orders: each conv output (up to K = 3 x 3 x 512 = 4608 products) is off
#: by about sqrt(K) x 6e-8 = 4e-6 of its scale, and the 18 layers to the heads keep that scale (VGG's
#: He initialisation is made for it), so the outputs agree to under 18 x 4e-6 = 7e-5 of theirs; 1e-4
#: leaves room. The precision is forced to f32, so no CPU swaps in bf16 (measured: about 2e-6).
RELATIVE_TOL = 1e-4


@pytest.mark.parametrize("n", [1, 2, 4, 9])
def test_parameter_shapes_are_p2pnets_state_dict(n: int) -> None:
    expected = {key: tuple(value.shape) for key, value in P2PNet(num_candidates=n).state_dict().items()}
    assert list(parameter_shapes(n).items()) == list(expected.items())


@pytest.mark.parametrize("n", [2, 4])
def test_built_graph_gives_torchs_outputs(tmp_path: Path, n: int) -> None:
    from crowdwatch.model.backends import OpenVINOBackend

    torch.manual_seed(n)
    path = save_checkpoint(tmp_path / "net.pt", P2PNet(num_candidates=n), threshold=0.3, half=True)
    net, meta = load_checkpoint(path)
    weights, read_meta, digest = read_checkpoint_arrays(path)
    assert read_meta == meta and len(digest) == 64
    for key, value in net.state_dict().items():  # float16 widened to float32 exactly, as torch does
        np.testing.assert_array_equal(weights[key], value.numpy())
    backend = OpenVINOBackend(path, precision="fp32", threads=1)
    assert backend.meta == meta and backend.precision == "fp32" and not backend.quantized
    rng = np.random.default_rng(n)
    for shape in ((1, 3, 64, 96), (2, 3, 48, 80)):  # batch, height and width are dynamic
        batch = rng.normal(size=shape).astype(np.float32)
        with torch.inference_mode():
            want = net(torch.from_numpy(batch))
        got = backend(batch)
        assert got["logits"].shape == (shape[0], shape[2] // 8 * shape[3] // 8 * n)
        for name in ("logits", "points"):
            scale = float(want[name].abs().max())
            np.testing.assert_allclose(got[name], want[name].numpy(), rtol=0, atol=RELATIVE_TOL * scale)
