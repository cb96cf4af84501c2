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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from crowdwatch.choices import DEFAULT_THRESHOLD
from crowdwatch.errors import CheckpointError
from crowdwatch.fileio import atomic_file
from crowdwatch.model.anchors import STRIDE
from crowdwatch.model.p2pnet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    REGRESSION_SCALE,
    P2PNet,
)
from crowdwatch.weightsfile import DEFAULT_NAME, PACKAGED_WEIGHTS

#: Where the packaged default weights live (shipped with the wheel, loaded with no download).
DEFAULT_WEIGHTS = PACKAGED_WEIGHTS
FORMAT = "crowdwatch-p2pnet"
FORMAT_VERSION = 1
BACKBONE = "vgg16"
_MAX_KEYS_NAMED = 6


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything in a checkpoint except the weights."""

    num_candidates: int
    regression_scale: float = REGRESSION_SCALE
    stride: int = STRIDE
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    default_threshold: float = DEFAULT_THRESHOLD
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def trained(self) -> bool:
        """False for a checkpoint that says its weights are an untrained initialisation."""
        return not self.provenance.get("untrained", False)


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


def meta_payload(meta: CheckpointMeta) -> dict[str, Any]:
    """The checkpoint's metadata keys (everything but ``state_dict``), as plain JSON-able data.

    Exported models (:mod:`crowdwatch.model.export`) carry exactly this, read back by :func:`parse_meta`.
    """
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": {
            "backbone": BACKBONE,
            "num_candidates": meta.num_candidates,
            "stride": meta.stride,
            "regression_scale": meta.regression_scale,
        },
        "normalization": {
            "input": "rgb",
            "scale": 1.0 / 255.0,
            "mean": list(meta.mean),
            "std": list(meta.std),
        },
        "default_threshold": float(meta.default_threshold),
        "provenance": dict(meta.provenance),
    }


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
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_name_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_name_keys(unexpected)}")
        raise CheckpointError(path, "; ".join(parts), reason="keys")
    n = net.num_candidates
    for key, tensor in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(tensor.shape):
            hint = ""
            if key.startswith(("regression.output", "classification.output")):
                per_cand = 2 if key.startswith("regression") else 1
                hint = (
                    f" (the metadata says N={n}, so {per_cand * n} output channels were expected; "
                    f"the tensor has {got.shape[0]}: wrong N)"
                )
            raise CheckpointError(
                path,
                f"tensor {key} has shape {tuple(got.shape)}, expected {tuple(tensor.shape)}{hint}",
                reason="wrong_n" if hint else "shape",
            )
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)


def parse_meta(path: Path, payload: Any, *, weights_key: str | None = "state_dict") -> CheckpointMeta:
    """Validate a checkpoint's metadata; ``weights_key=None``: metadata alone (as exported models carry)."""
    if not isinstance(payload, Mapping):
        raise CheckpointError(
            path, f"holds a {type(payload).__name__}, not a crowdwatch checkpoint", reason="architecture"
        )
    if payload.get("format") != FORMAT:
        if _looks_published(payload):
            raise CheckpointError(
                path,
                "is a checkpoint of the published P2PNet code, not a crowdwatch checkpoint; "
                f"import it with: crowdwatch convert {path} OUT.pt",
                reason="architecture",
            )
        found = payload.get("format", "no 'format' key")
        raise CheckpointError(
            path,
            f"is not a crowdwatch P2PNet checkpoint (format: {found!r}, expected {FORMAT!r}); "
            "another architecture or an unrelated file",
            reason="architecture",
        )
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise CheckpointError(
            path,
            f"has format version {version!r}; this crowdwatch reads versions 1 to {FORMAT_VERSION} "
            "(written by a newer crowdwatch?)",
            reason="version",
        )
    for key in ("arch", "normalization", *([weights_key] if weights_key else [])):
        if key not in payload:
            raise CheckpointError(path, f"metadata key {key!r} is missing", reason="corrupt")
    arch = payload["arch"]
    if arch.get("backbone") != BACKBONE or arch.get("stride") != STRIDE:
        raise CheckpointError(
            path,
            f"is for another architecture (backbone {arch.get('backbone')!r}, stride "
            f"{arch.get('stride')!r}); this crowdwatch runs backbone {BACKBONE!r} at stride {STRIDE}",
            reason="architecture",
        )
    n = arch.get("num_candidates")
    if not isinstance(n, int) or n < 1:
        raise CheckpointError(path, f"declares an invalid N (num_candidates={n!r})", reason="wrong_n")
    norm = payload["normalization"]
    return CheckpointMeta(
        num_candidates=n,
        regression_scale=float(arch.get("regression_scale", REGRESSION_SCALE)),
        stride=STRIDE,
        mean=_channel_triple(path, "mean", norm.get("mean", IMAGENET_MEAN)),
        std=_channel_triple(path, "std", norm.get("std", IMAGENET_STD)),
        default_threshold=float(payload.get("default_threshold", DEFAULT_THRESHOLD)),
        provenance=dict(payload.get("provenance", {})),
        format_version=version,
    )


def _looks_published(payload: Mapping[str, Any]) -> bool:
    state = payload.get("model", payload)
    return isinstance(state, Mapping) and any(str(k).startswith("backbone.body1.") for k in state)


def _name_keys(keys: list[str]) -> str:
    named = ", ".join(keys[:_MAX_KEYS_NAMED])
    more = len(keys) - _MAX_KEYS_NAMED
    return named + (f" and {more} more" if more > 0 else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _channel_triple(path: str | Path, name: str, values: Any) -> tuple[float, float, float]:
    """The normalisation's per-channel ``name`` as three floats (R, G, B), or a CheckpointError."""
    try:
        r, g, b = (float(v) for v in values)
    except (TypeError, ValueError):
        problem = f"declares an invalid normalization {name} {values!r} (three numbers expected)"
        raise CheckpointError(path, problem, reason="corrupt") from None
    return r, g, b
