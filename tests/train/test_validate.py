"""Validation during training: counts, and the two ratios that show progress while nobody is counted."""

import csv
import math

import numpy as np
import pytest
import torch

from crowdwatch.data.synthetic import write_blob_folder
from crowdwatch.model import P2PNet
from crowdwatch.train.config import parse_config
from crowdwatch.train.trainer import Trainer
from crowdwatch.train.validate import ValImage, validate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def net_at(probability: float) -> P2PNet:
    """A real P2PNet whose heads give every candidate ``probability`` and its place in the cell layout."""
    net = P2PNet(num_candidates=4)
    with torch.no_grad():
        net.classification.output.weight.zero_()
        net.classification.output.bias.fill_(math.log(probability / (1 - probability)))
        net.regression.output.weight.zero_()  # the bias holds the layout: every point inside its cell
    return net.eval()


@pytest.mark.parametrize(("probability", "counted"), [(0.05, 0), (0.7, 1)])
def test_mass_and_counted_ratios_sum_over_the_images_of_a_dataset(probability, counted):
    # 64x64 and 32x48: 8x8 and 4x6 cells of 4 candidates, 256 + 96 candidates in all
    images = [
        ValImage("a", "one.jpg", np.zeros((64, 64, 3), np.uint8), gt_count=10),
        ValImage("a", "two.jpg", np.zeros((32, 48, 3), np.uint8), gt_count=6),
        ValImage("b", "three.jpg", np.zeros((32, 48, 3), np.uint8), gt_count=0),
    ]
    val = validate(
        net_at(probability), images, threshold=0.5, device=torch.device("cpu"), autocast_dtype=None
    )
    assert val["a"]["mass_ratio"] == pytest.approx(probability * (256 + 96) / 16, rel=1e-4)
    assert val["a"]["counted_ratio"] == pytest.approx(counted * (256 + 96) / 16)
    assert val["a"]["mae"] == pytest.approx(counted * (256 + 96 - 16) / 2 + (1 - counted) * 8)
    # no people in "b": the ratio is over one person, not a division by zero
    assert val["b"]["mass_ratio"] == pytest.approx(probability * 96, rel=1e-4)
    assert val["all"]["counted_ratio"] == pytest.approx(counted * (256 + 2 * 96) / 16)


def test_the_training_log_carries_the_ratios_on_validation_steps(tmp_path):
    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    raw = {
        "data": {"datasets": [{"path": str(data), "name": "blobs"}], "val_every": 4},
        "train": {"steps": 2, "images_per_step": 1, "crops_per_image": 1, "crop_size": 32, "workers": 0},
        "validation": {"every_steps": 2, "longest_side": None},
    }
    Trainer(parse_config(raw, tmp_path), tmp_path / "run", resume=False).run(progress=False)
    with (tmp_path / "run" / "log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["val_mass_ratio_blobs"] == ""  # step 1: no validation
    assert float(rows[1]["val_mass_ratio_blobs"]) > 0
    assert float(rows[1]["val_mass_ratio"]) == float(rows[1]["val_mass_ratio_blobs"])
    assert float(rows[1]["val_counted_ratio_blobs"]) >= 0
