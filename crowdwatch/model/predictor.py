"""Predictor: the network with its preprocessing, precision policy and decoding, ready to count."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from crowdwatch.errors import UsageError
from crowdwatch.model.checkpoint import CheckpointMeta, load_checkpoint, packaged_weights
from crowdwatch.model.p2pnet import P2PNet
from crowdwatch.model.postprocess import Prediction, decode
from crowdwatch.model.precision import PRECISIONS, resolve_device, resolve_inference_precision
from crowdwatch.model.preprocess import Preprocessor

#: PRECISIONS is re-exported: callers choosing a precision for a Predictor find the choices beside it.
__all__ = ["PRECISIONS", "UNTRAINED_WARNING", "Predictor"]

logger = logging.getLogger(__name__)

UNTRAINED_WARNING = (
    "NO TRAINED WEIGHTS: running P2PNet with random weights, so every count is MEANINGLESS. "
    "Pass --weights (or model.weights in the config) with a trained checkpoint."
)


class Predictor:
    """Counts people in images with one shared P2PNet.

    Precision: ``fp16`` converts the weights to half and runs channels_last (CUDA); ``bf16`` runs
    float32 weights under bf16 autocast, channels_last; ``fp32`` runs channels_last float32.
    All inference runs under ``torch.inference_mode()``.
    """

    def __init__(
        self,
        net: P2PNet,
        meta: CheckpointMeta,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        threshold: float | None = None,
        longest_side: int | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.precision = resolve_inference_precision(precision, self.device)
        self.meta = meta
        self.threshold = meta.default_threshold if threshold is None else float(threshold)
        if not 0.0 <= self.threshold < 1.0:
            raise UsageError(f"threshold must be in [0, 1), but got {self.threshold}")
        self.preprocess = Preprocessor(mean=meta.mean, std=meta.std, longest_side=longest_side)
        # torch's stubs lack the (device, memory_format) overload that Module.to accepts at runtime.
        net = net.eval().to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        if self.precision == "fp16":
            net = net.half()
        for param in net.parameters():
            param.requires_grad_(False)
        self.net = net

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | None = None,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        threshold: float | None = None,
        longest_side: int | None = None,
    ) -> Predictor:
        """Load ``path``; with ``None``, the packaged default weights, or random ones with a loud warning."""
        if path is None:
            path = packaged_weights()
        if path is None:
            logger.warning(UNTRAINED_WARNING)
            with torch.random.fork_rng(devices=[]):  # a fixed init without resetting the caller's RNG
                torch.manual_seed(0)
                net = P2PNet()
            meta = CheckpointMeta(num_candidates=net.num_candidates, provenance={"untrained": True})
        else:
            net, meta = load_checkpoint(path)
            if not meta.trained:
                logger.warning(UNTRAINED_WARNING)
        return cls(
            net, meta, device=device, precision=precision, threshold=threshold, longest_side=longest_side
        )

    @property
    def trained(self) -> bool:
        return self.meta.trained

    @contextlib.contextmanager
    def _precision_context(self) -> Iterator[None]:
        if self.precision == "bf16":
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                yield
        else:
            yield

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the network on a preprocessed batch under inference mode and the precision policy."""
        with torch.inference_mode(), self._precision_context():
            batch = batch.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            if self.precision == "fp16":
                batch = batch.half()
            out: dict[str, torch.Tensor] = self.net(batch)
            return out

    def predict(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        """People in each image: one :class:`Prediction` per image, points in source pixels."""
        batch, geometries = self.preprocess(images, device=self.device)
        out = self.forward(batch)
        return decode(out["logits"], out["points"], geometries, self.threshold)

    def warmup(self, height: int = 256, width: int = 256) -> None:
        """One throwaway run so that the first real frame does not pay for kernel selection."""
        self.predict([np.zeros((height, width, 3), dtype=np.uint8)])
