"""P2PNet: the network (backbone, anchors), its checkpoints and the import of published ones,
preprocessing, decoding, the precision policy, and the Predictor that ties them.

The names below load on first use (PEP 562), so that importing a torch-free module of this package
(``crowdwatch.model.triton``: the client of a shared inference pool) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crowdwatch.model.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
    from crowdwatch.model.p2pnet import P2PNet
    from crowdwatch.model.postprocess import Prediction, decode
    from crowdwatch.model.predictor import Predictor
    from crowdwatch.model.preprocess import InputGeometry, Preprocessor

_HOMES = {
    "CheckpointMeta": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "P2PNet": "p2pnet",
    "Prediction": "postprocess",
    "decode": "postprocess",
    "Predictor": "predictor",
    "InputGeometry": "preprocess",
    "Preprocessor": "preprocess",
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
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
