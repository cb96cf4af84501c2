"""Predictor: a backend with its preprocessing and decoding, ready to count.

Whatever runs the network (:mod:`crowdwatch.model.backends`: torch, or OpenVINO, which needs no torch),
the Predictor pads, normalises, batches and decodes the same way, so counts agree across backends up
to the backend's numerics. It also bounds what one forward pass holds: batches are split so that each
stays within ``tile_pixels`` of network input, and an image larger than that is cut into overlapping
tiles whose points are merged (:mod:`crowdwatch.model.tiling`), before any backend sees it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from crowdwatch.choices import BACKENDS, PRECISIONS
from crowdwatch.errors import CheckpointError, UsageError
from crowdwatch.model.backends import Backend, OpenVINOBackend, import_torch, takes_arrays
from crowdwatch.model.meta import CheckpointMeta
from crowdwatch.model.postprocess import Prediction, decode
from crowdwatch.model.preprocess import InputGeometry, Preprocessor, padded_size
from crowdwatch.model.tiling import DEFAULT_TILE_MARGIN, DEFAULT_TILE_PIXELS, Tile, check_budget, plan_tiles
from crowdwatch.weightsfile import EXPORTED_SUFFIXES, PACKAGED_WEIGHTS, resolve_weights

if TYPE_CHECKING:  # torch loads only for the torch backend: the openvino backend runs without it
    import torch

    from crowdwatch.model.p2pnet import P2PNet

if TYPE_CHECKING:
    from crowdwatch.model.triton import TritonTarget

#: PRECISIONS and BACKENDS are re-exported: callers choosing them for a Predictor find the choices beside it.
__all__ = ["BACKENDS", "PRECISIONS", "UNTRAINED_WARNING", "Predictor"]

logger = logging.getLogger(__name__)

UNTRAINED_WARNING = (
    "NO TRAINED WEIGHTS: running P2PNet with random weights, so every count is MEANINGLESS. "
    "Pass --weights (or model.weights in the config) with a trained checkpoint."
)


def _as_backend(net: P2PNet | Backend, *, device: str | torch.device, precision: str) -> Backend:
    """A P2PNet module run by the torch backend, or a ready backend as it is. Telling them apart
    imports nothing: a module exists only where torch is already imported."""
    loaded = sys.modules.get("torch")
    if loaded is not None and isinstance(net, loaded.nn.Module):
        from crowdwatch.model.torch_backend import TorchBackend

        return TorchBackend(net, device=device, precision=precision)
    return cast("Backend", net)


class Predictor:
    """Counts people in images with one shared network.

    ``net`` is a :class:`P2PNet` (run by :class:`TorchBackend` at ``device`` and ``precision``: ``fp16``
    converts the weights to half, CUDA; ``bf16`` runs float32 weights under bf16 autocast; ``fp32``
    channels_last float32, all under ``torch.inference_mode()``) or a ready :class:`Backend`, whose own
    device and precision then apply.

    ``tile_pixels`` bounds one forward pass, in network-input pixels (padded, summed over the batch),
    and with it the network's peak memory (``None``: :data:`~crowdwatch.model.tiling.DEFAULT_TILE_PIXELS`):
    larger images run as tiles with ``tile_margin`` pixels of context on each inner side
    (:func:`~crowdwatch.model.tiling.plan_tiles`).
    """

    def __init__(
        self,
        net: P2PNet | Backend,
        meta: CheckpointMeta,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        threshold: float | None = None,
        longest_side: int | None = None,
        tile_pixels: int | None = None,
        tile_margin: int = DEFAULT_TILE_MARGIN,
    ) -> None:
        tile_pixels = DEFAULT_TILE_PIXELS if tile_pixels is None else tile_pixels
        try:
            check_budget(tile_pixels, tile_margin)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.backend: Backend = _as_backend(net, device=device, precision=precision)
        self.device = self.backend.device
        self.precision = self.backend.precision
        self.meta = meta
        self.threshold = meta.default_threshold if threshold is None else float(threshold)
        if not 0.0 <= self.threshold < 1.0:
            raise UsageError(f"threshold must be in [0, 1), but got {self.threshold}")
        self.preprocess = Preprocessor(mean=meta.mean, std=meta.std, longest_side=longest_side)
        self.tile_pixels = tile_pixels
        self.tile_margin = tile_margin

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | None = None,
        *,
        backend: str = "torch",
        device: str | torch.device = "auto",
        precision: str = "auto",
        threshold: float | None = None,
        longest_side: int | None = None,
        tile_pixels: int | None = None,
        tile_margin: int = DEFAULT_TILE_MARGIN,
        threads: int | None = None,
        triton: TritonTarget | None = None,
    ) -> Predictor:
        """Load ``path`` for ``backend``.

        torch: a crowdwatch checkpoint; ``None`` or ``default`` means the packaged default weights (None:
        random ones with a loud warning on an install without them). openvino: an exported ``.xml`` or
        ``.onnx`` (``crowdwatch export``), or a crowdwatch checkpoint (``None`` or ``default``: the
        packaged weights), built into an OpenVINO graph without torch. ``threads``: the openvino
        backend's inference threads (the torch backend uses torch's, ``torch.set_num_threads``). triton:
        no file; ``triton`` says where the pool is.
        """
        path = resolve_weights(path)
        if backend not in BACKENDS:
            raise UsageError(f"backend must be one of {', '.join(BACKENDS)}, but got {backend!r}")
        if backend == "triton":
            return cls._from_pool(path, triton, threshold, longest_side, tile_pixels, tile_margin)
        if backend == "openvino":
            if path is None:
                if not PACKAGED_WEIGHTS.is_file():
                    raise UsageError(
                        "this install ships no packaged weights: pass --weights (or model.weights) naming "
                        "a crowdwatch checkpoint or the .xml or .onnx written by crowdwatch export"
                    )
                path = PACKAGED_WEIGHTS
            if str(device) not in ("auto", "cpu"):
                raise UsageError(f"the openvino backend runs on the CPU, but device {device!r} was asked for")
            runner = OpenVINOBackend(path, precision=precision, threads=threads)
            if not runner.meta.trained:
                logger.warning(UNTRAINED_WARNING)
            return cls(
                runner,
                runner.meta,
                threshold=threshold,
                longest_side=longest_side,
                tile_pixels=tile_pixels,
                tile_margin=tile_margin,
            )
        if path is not None and path.suffix.lower() in EXPORTED_SUFFIXES:
            raise CheckpointError(
                path, "is an exported model: run it with the openvino backend (--backend openvino)"
            )
        torch = import_torch()  # a UsageError naming the extra where torch is not installed

        from crowdwatch.model.checkpoint import load_checkpoint, packaged_weights
        from crowdwatch.model.p2pnet import P2PNet

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
            net,
            meta,
            device=device,
            precision=precision,
            threshold=threshold,
            longest_side=longest_side,
            tile_pixels=tile_pixels,
            tile_margin=tile_margin,
        )

    @classmethod
    def _from_pool(
        cls,
        path: Path | None,
        target: TritonTarget | None,
        threshold: float | None,
        longest_side: int | None,
        tile_pixels: int | None,
        tile_margin: int,
    ) -> Predictor:
        """The triton backend: the model and its metadata are the pool's (:mod:`crowdwatch.model.triton`).
        Unless set, ``tile_pixels`` is the server's batch of full-size images, so that one worker batch
        is one request (the tiling budget still applies to each image)."""
        from crowdwatch.model.checkpoint import parse_meta
        from crowdwatch.model.triton import TritonBackend

        if target is None:
            raise UsageError(
                "the triton backend needs the pool's address: --url grpc://HOST:PORT (model.url)"
            )
        if path is not None:
            raise UsageError("the triton backend runs the pool's model: leave --weights (model.weights) out")
        runner = TritonBackend(target)
        meta = parse_meta(Path(runner.where), runner.metadata, weights_key=None)
        return cls(
            runner,
            meta,
            threshold=threshold,
            longest_side=longest_side,
            tile_pixels=runner.max_batch_size * DEFAULT_TILE_PIXELS if tile_pixels is None else tile_pixels,
            tile_margin=tile_margin,
        )

    @property
    def trained(self) -> bool:
        return self.meta.trained

    @property
    def net(self) -> P2PNet:
        """The torch module (torch backend only)."""
        net: P2PNet | None = getattr(self.backend, "net", None)
        if self.backend.name != "torch" or net is None:
            raise AttributeError(f"the {self.backend.name} backend has no torch module")
        return net

    def forward(self, batch: Any) -> Mapping[str, Any]:
        """Run the network on a preprocessed batch: ``{"logits": (B, M), "points": (B, M, 2)}``, at least
        (torch tensors from the torch backend, numpy arrays from openvino)."""
        return self.backend(batch)

    def batch(self, crops: Sequence[np.ndarray]) -> Any:
        """Crops at their input size as one batch in the form the backend takes (see
        :class:`~crowdwatch.model.backends.Backend`)."""
        if takes_arrays(self.backend):
            return self.preprocess.array(crops)
        return self.preprocess.batch(crops, device=self.device)

    def predict(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        """People in each image: one :class:`Prediction` per image, points in source pixels.

        The images (resized under the policy) and their tiles run in consecutive groups of at most
        ``tile_pixels`` padded input pixels; an image that fits runs whole, so a batch within the
        budget is one forward pass, padded as one batch.
        """
        if len(images) == 0:
            raise ValueError("images must not be empty")
        prepared = [self.preprocess.resize(image) for image in images]
        pieces = [
            (i, tile)
            for i, (_, geo) in enumerate(prepared)
            for tile in plan_tiles(*geo.resized_hw, tile_pixels=self.tile_pixels, margin=self.tile_margin)
        ]
        found: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in images]
        for group in self._groups(pieces):
            crops = [prepared[i][0][tile.rows.slice, tile.cols.slice] for i, tile in group]
            out = self.forward(self.batch(crops))
            # Decode each crop on its own: points in its input pixels (scale 1), those in its padding dropped.
            own = [InputGeometry(source_hw=c.shape[:2], resized_hw=c.shape[:2]) for c in crops]
            for (i, tile), pred in zip(
                group, decode(out["logits"], out["points"], own, self.threshold), strict=True
            ):
                found[i].append(tile.keep_core(pred.points, pred.scores))
        results = []
        for (_, geo), parts in zip(prepared, found, strict=True):
            points = np.concatenate([p for p, _ in parts])
            scores = np.concatenate([s for _, s in parts])
            results.append(Prediction(points=geo.to_source(points), scores=scores))
        return results

    def _groups(self, pieces: Sequence[tuple[int, Tile]]) -> list[list[tuple[int, Tile]]]:
        """Consecutive pieces in batches whose padded input (count x largest H x largest W) fits in
        ``tile_pixels``."""
        groups: list[list[tuple[int, Tile]]] = []
        height = width = 0
        for piece in pieces:
            tile = piece[1]
            h, w = padded_size(max(height, tile.rows.length), max(width, tile.cols.length))
            if groups and (len(groups[-1]) + 1) * h * w <= self.tile_pixels:
                groups[-1].append(piece)
                height, width = h, w
            else:
                groups.append([piece])
                height, width = tile.rows.length, tile.cols.length
        return groups

    def warmup(self, height: int = 256, width: int = 256) -> None:
        """One throwaway run so that the first real frame does not pay for kernel selection."""
        self.predict([np.zeros((height, width, 3), dtype=np.uint8)])
