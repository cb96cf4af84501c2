"""The torch backend: the P2PNet module, channels_last, under ``inference_mode`` and the precision policy.

Kept apart from :mod:`crowdwatch.model.backends` so that the openvino backend runs without torch
installed: this is the one backend module that imports it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from crowdwatch.model.p2pnet import P2PNet
from crowdwatch.model.precision import resolve_device, resolve_inference_precision

__all__ = ["TorchBackend"]


class TorchBackend:
    """The PyTorch module. ``fp16`` converts the weights to half (CUDA); ``bf16`` runs float32 weights
    under bf16 autocast; every precision runs channels_last under ``torch.inference_mode()``.

    It takes the Predictor's batches as torch tensors (:meth:`Preprocessor.batch`, on its device).
    """

    name = "torch"
    takes_arrays = False

    def __init__(self, net: P2PNet, *, device: str | torch.device, precision: str) -> None:
        self.device = resolve_device(device)
        self.precision = resolve_inference_precision(precision, self.device)
        # torch's stubs lack the (device, memory_format) overload that Module.to accepts at runtime.
        net = net.eval().to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit memory_format on this overload
        if self.precision == "fp16":
            net = net.half()
        for param in net.parameters():
            param.requires_grad_(False)
        self.net = net

    @contextlib.contextmanager
    def _precision_context(self) -> Iterator[None]:
        if self.precision == "bf16":
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                yield
        else:
            yield

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.inference_mode(), self._precision_context():
            batch = batch.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            if self.precision == "fp16":
                batch = batch.half()
            out: dict[str, torch.Tensor] = self.net(batch)
            return out
