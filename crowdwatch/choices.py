"""The choices a user names, declared once and torch-free, so that the config schema, the commands and
the model all import them from here: the backends, the precisions, the default point threshold and the
default pixel cap (the exported-model suffixes live beside the weights files, in
``crowdwatch/weightsfile.py``).

Adding a backend touches this file and the module that runs it (``crowdwatch/model/backends.py``).
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "BACKENDS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_THRESHOLD",
    "PRECISIONS",
    "BackendName",
    "PrecisionName",
]

#: What runs the network: ``torch`` (a crowdwatch checkpoint), ``openvino`` (an exported model) or
#: ``triton`` (a shared inference pool reached over gRPC: no model file on this machine).
BackendName = Literal["torch", "openvino", "triton"]
BACKENDS: tuple[str, ...] = get_args(BackendName)

#: Inference and training precisions; ``auto`` picks by device (see ``crowdwatch/model/precision.py``).
PrecisionName = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(PrecisionName)

#: The point confidence threshold of a checkpoint that names none, and of new training runs.
DEFAULT_THRESHOLD = 0.5

#: The default pixel cap for images and camera frames (config ``max_pixels``, ``--max-pixels``): 50 MP.
#: A 48 MP phone photo or an 8K frame (33 MP) passes; its decoded BGR copy is 150 MB. A 20000x20000
#: "pixel bomb" (400 MP: 1.2 GB decoded, tens of GB through the network) is refused from its header.
DEFAULT_MAX_PIXELS = 50_000_000
