"""ImageNet initialisation of the VGG16 backbone (torchvision ``VGG16_Weights.DEFAULT``).

Nothing downloads during model construction. Training asks for the ImageNet weights explicitly;
they are read from torch hub's cache (``$TORCH_HOME/hub/checkpoints``) and downloaded only when the
caller allows it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torchvision.models import VGG16_Weights

from crowdwatch.errors import BackboneWeightsMissing
from crowdwatch.model.p2pnet import BACKBONE_LAYERS, P2PNet

logger = logging.getLogger(__name__)

IMAGENET_WEIGHTS = VGG16_Weights.DEFAULT


def imagenet_cache_path() -> Path:
    """Where torch hub keeps (and looks for) the ImageNet VGG16 file."""
    filename = IMAGENET_WEIGHTS.url.rsplit("/", 1)[-1]
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


def load_imagenet_backbone(net: P2PNet, *, download: bool = False) -> Path:
    """Copy ImageNet VGG16 weights into ``net.backbone``; returns the file they came from."""
    features = imagenet_features_state_dict(download=download)
    net.backbone.load_state_dict(features, strict=True)
    logger.info("backbone initialised from ImageNet VGG16 (%s)", imagenet_cache_path())
    return imagenet_cache_path()
