"""The crowdwatch checkpoint format: weights plus the metadata needed to use them.

A checkpoint is a ``torch.save`` of a plain dict (loaded with ``weights_only=True``, so a checkpoint
can never run code)::

    {"format": "crowdwatch-p2pnet", "format_version": 1,
     "arch": {"backbone": "vgg16", "num_candidates": 4, "stride": 8, "regression_scale": 100.0},
     "normalization": {"input": "rgb", "scale": 1/255, "mean": [...], "std": [...]},
     "default_threshold": 0.5,
     "provenance": {...},          # what data, how many steps, validation figures, source
     "state_dict": {...}}          # P2PNet.state_dict(), float32 or float16
"""

from __future__ import annotations

import datetime as _dt
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from crowdwatch.choices import DEFAULT_THRESHOLD
from crowdwatch.errors import CheckpointError
from crowdwatch.fileio import atomic_file
from crowdwatch.model.meta import (
    BACKBONE,
    FORMAT,
    FORMAT_VERSION,
    CheckpointMeta,
    check_state_shapes,
    meta_payload,
    parse_meta,
)
from crowdwatch.model.p2pnet import IMAGENET_MEAN, IMAGENET_STD, P2PNet
from crowdwatch.weightsfile import DEFAULT_NAME, PACKAGED_WEIGHTS

#: The metadata's names, re-exported: :mod:`crowdwatch.model.meta` holds them, torch-free.
__all__ = [
    "BACKBONE",
    "DEFAULT_WEIGHTS",
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointMeta",
    "load_checkpoint",
    "load_state_dict_checked",
    "meta_payload",
    "packaged_weights",
    "parse_meta",
    "read_checkpoint_file",
    "save_checkpoint",
]

#: Where the packaged default weights live (shipped with the wheel, loaded with no download).
DEFAULT_WEIGHTS = PACKAGED_WEIGHTS


def packaged_weights() -> Path | None:
    """The packaged default weights (:data:`DEFAULT_WEIGHTS`), or None on an install that ships none."""
    return DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.exists() else None


def save_checkpoint(
    path: str | Path,
    net: P2PNet,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    provenance: Mapping[str, Any] | None = None,
    half: bool = False,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> Path:
    """Write ``net`` and its metadata to ``path`` atomically (a crash never leaves half a file).

    ``half=True`` stores the weights as float16 (half the size; they load back as float32).
    """
    path = Path(path)
    dtype = torch.float16 if half else torch.float32
    state = {
        k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
        for k, v in net.state_dict().items()
    }
    prov = dict(provenance or {})
    prov.setdefault("saved_at", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    meta = CheckpointMeta(
        num_candidates=net.num_candidates,
        regression_scale=net.regression_scale,
        mean=mean,
        std=std,
        default_threshold=float(threshold),
        provenance=prov,
    )
    payload = {**meta_payload(meta), "state_dict": state}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        torch.save(payload, fh)
    return path


def read_checkpoint_file(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True``, turning every failure into a CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "no such file", reason="missing")
    if path.is_dir():
        raise CheckpointError(path, "is a directory, not a checkpoint file", reason="missing")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "is empty (0 bytes)", reason="corrupt")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # A pickle that names a Python callable ("GLOBAL ...") is refused as unsafe; any other
        # unpickling failure means the bytes are not a valid pickle at all.
        if "GLOBAL" in str(exc):
            raise CheckpointError(
                path,
                "holds Python objects other than tensors and plain data; refusing to load it "
                "(a checkpoint must never be able to run code)",
                reason="unsafe",
            ) from None
        # torch's own text here suggests weights_only=False, advice a user must not be given.
        raise CheckpointError(
            path, "is truncated or corrupt and cannot be read (not a valid PyTorch file)", reason="corrupt"
        ) from None
    except Exception as exc:  # see below
        # Whatever else fails means the file is not a readable checkpoint: a truncated zip
        # (RuntimeError, BadZipFile), a short read (EOFError, OSError), or arbitrary bytes that drive
        # the weights-only unpickler into whatever error their next opcode causes (IndexError,
        # KeyError, struct.error, ...). That unpickler never runs code, so none of these is a risk.
        raise CheckpointError(
            path, f"is truncated or corrupt and cannot be read ({_first_line(exc)})", reason="corrupt"
        ) from None


def load_checkpoint(path: str | Path, *, num_candidates: int | None = None) -> tuple[P2PNet, CheckpointMeta]:
    """Load a crowdwatch checkpoint into a fresh float32 :class:`P2PNet` on the CPU.

    Args:
        path: the checkpoint file (``default``: the packaged weights).
        num_candidates: if given, the N the caller expects; a checkpoint with another N is refused.

    Raises:
        CheckpointError: missing, empty, truncated or corrupt file; unsafe pickle; a checkpoint of
            another architecture (a published P2PNet file is recognised and ``convert`` suggested);
            the wrong N; missing or unexpected keys (named); tensors of the wrong shape (named).
    """
    path = PACKAGED_WEIGHTS if str(path) == DEFAULT_NAME else Path(path)
    payload = read_checkpoint_file(path)
    meta = parse_meta(path, payload)
    if num_candidates is not None and meta.num_candidates != num_candidates:
        raise CheckpointError(
            path,
            f"wrong N: the checkpoint has {meta.num_candidates} candidates per cell, "
            f"but {num_candidates} were asked for",
            reason="wrong_n",
        )
    net = P2PNet(num_candidates=meta.num_candidates, regression_scale=meta.regression_scale)
    load_state_dict_checked(path, net, payload["state_dict"])
    net.eval()
    return net, meta


def load_state_dict_checked(path: str | Path, net: P2PNet, state: Any) -> None:
    """``net.load_state_dict(strict=True)`` with errors that name the offending keys."""
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(path, "'state_dict' is not a mapping of names to tensors", reason="corrupt")
    expected = {key: tuple(tensor.shape) for key, tensor in net.state_dict().items()}
    check_state_shapes(
        path, {key: tuple(value.shape) for key, value in state.items()}, expected, net.num_candidates
    )
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
