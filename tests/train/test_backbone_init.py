"""Starting training from an ImageNet backbone file: checked, recorded by sha256, clear errors; freezing
the first blocks; the prior-probability bias on the classification head."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest
import torch

from crowdwatch.data.synthetic import write_blob_folder
from crowdwatch.errors import UsageError
from crowdwatch.model import P2PNet
from crowdwatch.model.backbone import (
    KNOWN_BACKBONE_FILES,
    build_backbone,
    freeze_blocks,
    load_backbone_file,
    read_backbone_file,
)
from crowdwatch.model.checkpoint import load_checkpoint
from crowdwatch.train.build import set_prior
from crowdwatch.train.config import parse_config
from crowdwatch.train.trainer import Trainer


def saved_backbone(path: Path, *, prefix: str = "", seed: int = 7) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    state = {prefix + k: v for k, v in build_backbone().state_dict().items()}
    torch.save(state, path)
    return state


def test_a_good_file_is_loaded_and_recorded_by_sha256(tmp_path: Path) -> None:
    path = tmp_path / "vgg.pth"
    state = saved_backbone(path)
    net = P2PNet()
    record = load_backbone_file(net.backbone, path)
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["path"] == str(path) and "attribution" not in record  # an unknown file
    for key, value in net.backbone.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_a_full_vgg_state_dict_with_features_prefix_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "vgg_full.pth"
    state = saved_backbone(path, prefix="features.")
    features = read_backbone_file(path)
    assert torch.equal(features["28.bias"], state["features.28.bias"])


def _write(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "absent.pth", "no such file"),
        (
            lambda p: (p / "garbage.pth").write_bytes(b"\x00not a torch file" * 10) and p / "garbage.pth",
            "not a readable torch state dict",
        ),
        (lambda p: _write(p / "list.pth", [torch.zeros(1)]), "expected a state dict of tensors"),
        (lambda p: _write(p / "partial.pth", {"0.weight": torch.zeros(64, 3, 3, 3)}), "tensors missing"),
        (
            lambda p: _write(
                p / "shape.pth", {**build_backbone().state_dict(), "0.weight": torch.zeros(64, 1, 3, 3)}
            ),
            "0.weight has shape (64, 1, 3, 3), but VGG16 needs (64, 3, 3, 3)",
        ),
        (
            lambda p: _write(
                p / "nan.pth", {**build_backbone().state_dict(), "5.bias": torch.full((128,), math.nan)}
            ),
            "5.bias holds NaN or infinite values",
        ),
        (
            lambda p: _write(p / "int.pth", {k: v.long() for k, v in build_backbone().state_dict().items()}),
            "expected a floating dtype",
        ),
    ],
    ids=["missing", "garbage", "not-a-dict", "wrong-keys", "wrong-shape", "nan", "integer"],
)
def test_a_wrong_file_is_a_clear_usage_error(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(UsageError) as info:
        load_backbone_file(P2PNet().backbone, path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.data
def test_the_shared_imagenet_file_is_known_and_attributed(shared_data: Path) -> None:
    path = shared_data / "imagenet" / "vgg16_features_imagenet.pth"
    if not path.is_file():
        pytest.skip(f"the ImageNet backbone file is not at {path}")
    record = load_backbone_file(P2PNet().backbone, path)
    assert record["sha256"] in KNOWN_BACKBONE_FILES
    assert "Oxford Visual Geometry Group" in record["attribution"] and "CC BY 4.0" in record["attribution"]


def test_frozen_blocks_get_no_gradient_and_the_rest_do() -> None:
    net = P2PNet()
    frozen = freeze_blocks(net.backbone, 2)
    assert frozen == sum(p.numel() for p in net.backbone[:9].parameters())
    out = net(torch.randn(1, 3, 32, 32))
    (out["logits"].sum() + out["points"].sum()).backward()
    assert all(p.grad is None for p in net.backbone[:9].parameters())
    assert all(p.grad is not None for p in net.backbone[9:].parameters())
    with pytest.raises(ValueError, match=r"0\.\.5"):
        freeze_blocks(net.backbone, 6)


def test_prior_bias_starts_every_candidate_near_the_prior() -> None:
    torch.manual_seed(0)
    net = P2PNet()
    set_prior(net, 0.01)
    with torch.inference_mode():
        prob = torch.sigmoid(net(torch.randn(1, 3, 64, 64))["logits"])
    assert abs(prob.mean().item() - 0.01) < 0.005 and prob.max().item() < 0.05


def test_training_from_a_backbone_file_records_it_in_the_provenance(tmp_path: Path) -> None:
    saved_backbone(tmp_path / "vgg.pth")
    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    raw = {
        "seed": 1,
        "data": {"datasets": [{"path": str(data), "name": "blobs"}], "val_every": 4},
        "model": {"backbone_init": "vgg.pth", "freeze_blocks": 1, "cls_prior": 0.02},
        "train": {"steps": 2, "images_per_step": 2, "crops_per_image": 1, "crop_size": 32, "workers": 0},
        "validation": {"every_steps": 2, "longest_side": None},
    }
    config = parse_config(raw, tmp_path)  # relative to the config's folder
    assert config.model.backbone_init == str(tmp_path / "vgg.pth")
    Trainer(config, tmp_path / "run", resume=False).run(progress=False)
    _, meta = load_checkpoint(tmp_path / "run" / "best.pt")
    init = meta.provenance["backbone_init"]
    assert init["sha256"] == hashlib.sha256((tmp_path / "vgg.pth").read_bytes()).hexdigest()


def test_a_config_naming_a_missing_backbone_file_fails_before_training(tmp_path: Path) -> None:
    data = write_blob_folder(tmp_path / "blobs", 4, size=(48, 48), max_count=2)
    raw = {
        "data": {"datasets": [{"path": str(data)}]},
        "model": {"backbone_init": "nowhere.pth"},
        "train": {"steps": 1, "workers": 0},
    }
    with pytest.raises(UsageError, match=r"nowhere\.pth: no such file"):
        Trainer(parse_config(raw, tmp_path), tmp_path / "run", resume=False)
