"""`model.backend` in the site config: the weights must be of the backend's kind, with the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config_files import write_config

from crowdwatch.config.loader import ConfigError, load_config


def _site(tmp_path: Path, model: str) -> Path:
    return write_config(tmp_path, f"model:\n{model}\ncameras:\n  - id: a\n    url: clip.mp4\n")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("  weights: models/p2pnet.xml", "backend torch cannot run weights"),
        (
            "  weights: models/p2pnet.onnx",
            "torch runs a .pt checkpoint; openvino a checkpoint or an exported",
        ),
        ("  backend: tensorrt", "model.backend"),
    ],
)
def test_backend_and_weights_must_agree(tmp_path: Path, model: str, message: str) -> None:
    with pytest.raises(ConfigError, match="model") as info:
        load_config(_site(tmp_path, model))
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_openvino_backend_with_an_exported_model(tmp_path: Path) -> None:
    config = load_config(_site(tmp_path, "  backend: openvino\n  weights: models/p2pnet_int8.xml"))
    assert config.model.backend == "openvino"
    assert config.model.weights == tmp_path / "models/p2pnet_int8.xml"  # relative to the config file
    assert load_config(_site(tmp_path, "  weights: null")).model.backend == "torch"


@pytest.mark.parametrize("weights", ["", "\n  weights: default", "\n  weights: runs/best.pt"])
def test_openvino_backend_with_a_checkpoint(tmp_path: Path, weights: str) -> None:
    # openvino builds its network from a checkpoint without torch: the packaged weights or any other.
    config = load_config(_site(tmp_path, "  backend: openvino" + weights))
    assert config.model.backend == "openvino"
    assert config.model.weights is None or config.model.weights.suffix == ".pt"
