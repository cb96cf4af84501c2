"""A Triton model repository for the network: ``<name>/config.pbtxt`` and ``<name>/1/model.onnx``.

NVIDIA Triton serves it with its ONNX Runtime backend (on a GPU, optionally through ONNX Runtime's
TensorRT execution provider in fp16). The config declares what a crowdwatch box sends and decodes
(``images`` [B, 3, H, W] -> ``logits`` [B, M], ``points`` [B, M, 2], float32, H and W multiples of 16),
dynamic batching (requests of the same shape from many boxes run as one batch), an instance group, and
the model's metadata (N, stride, normalisation, threshold) under ``parameters["crowdwatch"]``, where a
box with ``backend: triton`` reads and checks it (:mod:`crowdwatch.model.triton`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from crowdwatch.model.triton import INPUT_NAME, METADATA_PARAMETER, OUTPUT_NAMES

__all__ = ["DEFAULT_MAX_BATCH", "DEFAULT_QUEUE_DELAY_US", "config_pbtxt", "write_repository"]

#: Most frames per forward pass on the server; also what the dynamic batcher fills up to.
DEFAULT_MAX_BATCH = 8
#: Longest a request waits in the server's queue for others to join its batch (microseconds).
DEFAULT_QUEUE_DELAY_US = 5000


def config_pbtxt(
    name: str,
    metadata: dict[str, Any],
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    instances: int = 1,
    kind: Literal["gpu", "cpu"] = "gpu",
    tensorrt: bool = False,
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
) -> str:
    """The model config, in protobuf text format (``model_config.proto`` of Triton)."""
    if max_batch < 1 or instances < 1 or queue_delay_us < 0:
        raise ValueError("max_batch and instances must be >= 1, queue_delay_us >= 0")
    accelerator = ""
    if tensorrt:
        accelerator = (
            "optimization {\n  execution_accelerators {\n    gpu_execution_accelerator: [\n"
            '      { name: "tensorrt"\n'
            '        parameters { key: "precision_mode" value: "FP16" }\n'
            '        parameters { key: "max_workspace_size_bytes" value: "4294967296" } }\n'
            "    ]\n  }\n}\n"
        )
    return (
        f'name: "{name}"\n'
        'backend: "onnxruntime"\n'
        f"max_batch_size: {max_batch}\n"
        f'input [ {{ name: "{INPUT_NAME}" data_type: TYPE_FP32 dims: [ 3, -1, -1 ] }} ]\n'
        "output [\n"
        f'  {{ name: "{OUTPUT_NAMES[0]}" data_type: TYPE_FP32 dims: [ -1 ] }},\n'
        f'  {{ name: "{OUTPUT_NAMES[1]}" data_type: TYPE_FP32 dims: [ -1, 2 ] }}\n'
        "]\n"
        "dynamic_batching {\n"
        f"  max_queue_delay_microseconds: {queue_delay_us}\n"
        "}\n"
        f"instance_group [ {{ count: {instances} kind: KIND_{kind.upper()} }} ]\n"
        f"{accelerator}"
        "parameters {\n"
        f'  key: "{METADATA_PARAMETER}"\n'
        f"  value {{ string_value: {json.dumps(json.dumps(metadata, sort_keys=True))} }}\n"
        "}\n"
    )


def write_repository(out: Path, name: str, onnx_file: Path, config: str) -> Path:
    """``out/<name>/config.pbtxt`` and ``out/<name>/1/model.onnx`` (moved from ``onnx_file``); returns
    the config's path."""
    model_dir = out / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    onnx_file.replace(model_dir / "1" / "model.onnx")
    path = model_dir / "config.pbtxt"
    path.write_text(config)
    return path
