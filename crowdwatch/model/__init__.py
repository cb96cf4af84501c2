"""P2PNet: the network (backbone, anchors), its checkpoints and the import of published ones,
preprocessing, decoding, the precision policy, and the Predictor that ties them.

The names below load on first use: importing :mod:`crowdwatch.model` (or a torch-free module in it,
such as the openvino backend's) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crowdwatch.model.checkpoint import load_checkpoint, save_checkpoint
    from crowdwatch.model.meta import CheckpointMeta
    from crowdwatch.model.p2pnet import P2PNet
    from crowdwatch.model.postprocess import Prediction, decode
    from crowdwatch.model.predictor import Predictor
    from crowdwatch.model.preprocess import InputGeometry, Preprocessor

#: name -> the module that defines it
_HOMES = {
    "CheckpointMeta": "crowdwatch.model.meta",
    "InputGeometry": "crowdwatch.model.preprocess",
    "P2PNet": "crowdwatch.model.p2pnet",
    "Prediction": "crowdwatch.model.postprocess",
    "Predictor": "crowdwatch.model.predictor",
    "Preprocessor": "crowdwatch.model.preprocess",
    "decode": "crowdwatch.model.postprocess",
    "load_checkpoint": "crowdwatch.model.checkpoint",
    "save_checkpoint": "crowdwatch.model.checkpoint",
}

__all__ = [
    "CheckpointMeta",
    "InputGeometry",
    "P2PNet",
    "Prediction",
    "Predictor",
    "Preprocessor",
    "decode",
    "load_checkpoint",
    "save_checkpoint",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
