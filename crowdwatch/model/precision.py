"""Which device and numeric precision a model runs at.

``auto`` means different things for the two uses, each with its own function:

- inference (:func:`resolve_inference_precision`): fp16 on CUDA, bf16 on CPUs with native bf16
  instructions, else fp32; it is the precision the Predictor runs the network in.
- training (:func:`resolve_training_precision`): bf16 on GPUs that support it, fp16 on other GPUs, bf16
  on CPUs with native bf16 instructions, else fp32; it is the autocast dtype of the forward pass
  (:data:`AUTOCAST_DTYPES`).
"""

from __future__ import annotations

import logging
import os
import platform
from pathlib import Path

import torch

from crowdwatch.choices import PRECISIONS
from crowdwatch.errors import UsageError

logger = logging.getLogger(__name__)

#: Training precision -> the dtype its forward pass autocasts to (None: no autocast).
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """True when this CPU has bf16 instructions (AVX512-BF16 or AMX) that oneDNN uses."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def machine_description(device: torch.device, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """What a figure was measured on: the GPU's name, or the CPU's model name and core count.

    The CPU model comes from ``cpuinfo``'s first ``model name`` line (Linux), else from the platform
    module, which on Linux often knows only the architecture.
    """
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = ""
    try:
        with cpuinfo.open() as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{name or platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def resolve_device(device: str | torch.device, *, key: str = "device") -> torch.device:
    """``"auto"`` -> the first CUDA GPU if there is one, else the CPU. ``key`` names the setting in errors."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise UsageError(f"{key} must be 'auto', 'cpu', 'cuda' or 'cuda:N', but got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"{key} {str(device)!r} was asked for, but no CUDA GPU is available")
    return resolved


def resolve_inference_precision(precision: str, device: torch.device) -> str:
    """The precision ``auto`` means on ``device``: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32."""
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, but got {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UsageError("precision fp16 needs a CUDA GPU; on the CPU use bf16 or fp32")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        logger.warning("this CPU has no native bf16 instructions: bf16 will be slower than fp32")
    return precision


def resolve_training_precision(precision: str, device: torch.device) -> str:
    """auto -> bf16 on CUDA with bf16 support, fp16 on other GPUs; on the CPU bf16 where it is native,
    else fp32 (emulated bf16 measured over 3x slower than fp32 on an AMD Zen 3)."""
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise UsageError("train.precision: fp16 training is only supported on CUDA (use bf16 on CPU)")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"
