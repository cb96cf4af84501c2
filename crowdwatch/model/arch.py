"""P2PNet's numbers, declared once and torch-free: what the network is, whichever runtime builds it.

The torch module (:mod:`crowdwatch.model.p2pnet`), the OpenVINO graph built from a checkpoint without
torch (:mod:`crowdwatch.model.ovgraph`), preprocessing, tiling and the checkpoint metadata all read them
from here, so a runtime without torch imports nothing heavy to know them.
"""

from __future__ import annotations

#: Feature stride of the point grid: one cell per 8x8 input pixels.
STRIDE = 8
#: Input sides must be multiples of this so that C5 (stride 16) upsampled by 2 matches C4.
SIZE_DIVISOR = 16
#: Raw regression outputs are multiplied by this to give pixel offsets (the published code's x100).
REGRESSION_SCALE = 100.0
#: Candidates per cell unless configured otherwise (the published 2x2 layout).
DEFAULT_NUM_CANDIDATES = 4
#: ImageNet statistics for RGB images scaled to [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The backbone is torchvision's vgg16().features[0:30]: C4 is the output of index 22, C5 of index 29.
C4_INDEX = 22
#: Layers of torchvision's ``vgg16().features`` that make the backbone (up to C5, before the last pool).
BACKBONE_LAYERS = 30
#: VGG16's ``features`` (torchvision's configuration "D"): output channels of each 3x3 conv (each followed
#: by a ReLU), "M" for a 2x2 max pool of stride 2. Cut at :data:`BACKBONE_LAYERS` layers.
VGG16_LAYOUT: tuple[int | str, ...] = (
    *(64, 64, "M"),
    *(128, 128, "M"),
    *(256, 256, 256, "M"),
    *(512, 512, 512, "M"),
    *(512, 512, 512),
)
#: Channels of the neck and of the heads' hidden layers.
NECK_CHANNELS = 256
#: 3x3 conv + ReLU layers in each head before its output conv.
HEAD_HIDDEN_LAYERS = 2
