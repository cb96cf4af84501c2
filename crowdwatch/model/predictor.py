"""Predictor: the network with its preprocessing, precision policy and decoding, ready to count."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from crowdwatch.errors import UsageError
from crowdwatch.model.checkpoint import CheckpointMeta, load_checkpoint
from crowdwatch.model.p2pnet import P2PNet
from crowdwatch.model.postprocess import Prediction, decode
from crowdwatch.model.preprocess import Preprocessor

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: Where the packaged default weights live (shipped with the wheel, loaded with no download).
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "p2pnet_default.pt"
UNTRAINED_WARNING = (
    "NO TRAINED WEIGHTS: running P2PNet with random weights, so every count is MEANINGLESS. "
    "Pass --weights (or model.weights in the config) with a trained checkpoint."
)


def cpu_has_native_bf16() -> bool:
    """True when this CPU has bf16 instructions (AVX512-BF16 or AMX) that oneDNN uses."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


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


def resolve_precision(precision: str, device: torch.device) -> str:
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
        self.precision = resolve_precision(precision, self.device)
        self.meta = meta
        self.threshold = meta.default_threshold if threshold is None else float(threshold)
        if not 0.0 <= self.threshold < 1.0:
            raise UsageError(f"threshold must be in [0, 1), but got {self.threshold}")
        self.preprocess = Preprocessor(mean=meta.mean, std=meta.std, longest_side=longest_side)
        net = net.eval().to(self.device, memory_format=torch.channels_last)
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
        if path is None and DEFAULT_WEIGHTS.exists():
            path = DEFAULT_WEIGHTS
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
        return cls(net, meta, device=device, precision=precision, threshold=threshold,
                   longest_side=longest_side)

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
            return self.net(batch)

    def predict(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        """People in each image: one :class:`Prediction` per image, points in source pixels."""
        batch, geometries = self.preprocess(images, device=self.device)
        out = self.forward(batch)
        return decode(out["logits"], out["points"], geometries, self.threshold)

    def warmup(self, height: int = 256, width: int = 256) -> None:
        """One throwaway run so that the first real frame does not pay for kernel selection."""
        self.predict([np.zeros((height, width, 3), dtype=np.uint8)])
