"""P2PNet: the network (backbone, anchors), its checkpoints and the import of published ones,
preprocessing, decoding, the precision policy, and the Predictor that ties them."""

from crowdwatch.model.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from crowdwatch.model.p2pnet import P2PNet
from crowdwatch.model.postprocess import Prediction, decode
from crowdwatch.model.predictor import Predictor
from crowdwatch.model.preprocess import InputGeometry, Preprocessor

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
