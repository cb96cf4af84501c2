"""A crowdwatch checkpoint's metadata, read and checked without torch.

A checkpoint (:mod:`crowdwatch.model.checkpoint`) is a ``torch.save`` of a plain dict: the metadata
below plus ``"state_dict"``. Exported models carry the same metadata as JSON. Everything here is plain
Python, so a runtime without torch (the openvino backend) reads and checks checkpoints with the same
rules and the same messages as torch does::

    {"format": "crowdwatch-p2pnet", "format_version": 1,
     "arch": {"backbone": "vgg16", "num_candidates": 4, "stride": 8, "regression_scale": 100.0},
     "normalization": {"input": "rgb", "scale": 1/255, "mean": [...], "std": [...]},
     "default_threshold": 0.5,
     "provenance": {...},          # what data, how many steps, validation figures, source
     "state_dict": {...}}          # P2PNet.state_dict(), float32 or float16
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crowdwatch.choices import DEFAULT_THRESHOLD
from crowdwatch.errors import CheckpointError
from crowdwatch.model.arch import IMAGENET_MEAN, IMAGENET_STD, REGRESSION_SCALE, STRIDE

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


def _channel_triple(path: str | Path, name: str, values: Any) -> tuple[float, float, float]:
    """The normalisation's per-channel ``name`` as three floats (R, G, B), or a CheckpointError."""
    try:
        r, g, b = (float(v) for v in values)
    except (TypeError, ValueError):
        problem = f"declares an invalid normalization {name} {values!r} (three numbers expected)"
        raise CheckpointError(path, problem, reason="corrupt") from None
    return r, g, b


def _looks_published(payload: Mapping[str, Any]) -> bool:
    state = payload.get("model", payload)
    return isinstance(state, Mapping) and any(str(k).startswith("backbone.body1.") for k in state)


def _name_keys(keys: list[str]) -> str:
    named = ", ".join(keys[:_MAX_KEYS_NAMED])
    more = len(keys) - _MAX_KEYS_NAMED
    return named + (f" and {more} more" if more > 0 else "")


def check_state_shapes(
    path: str | Path, state: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]], n: int
) -> None:
    """CheckpointError unless ``state`` (name -> shape) has exactly the ``expected`` names and shapes.

    Missing and unexpected keys are named; a head output of the wrong width says the metadata's N
    disagrees with the tensors (``n``: the metadata's N).
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_name_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_name_keys(unexpected)}")
        raise CheckpointError(path, "; ".join(parts), reason="keys")
    for key, shape in expected.items():
        got = state[key]
        if tuple(got) != tuple(shape):
            hint = ""
            if key.startswith(("regression.output", "classification.output")):
                per_cand = 2 if key.startswith("regression") else 1
                hint = (
                    f" (the metadata says N={n}, so {per_cand * n} output channels were expected; "
                    f"the tensor has {got[0]}: wrong N)"
                )
            raise CheckpointError(
                path,
                f"tensor {key} has shape {tuple(got)}, expected {tuple(shape)}{hint}",
                reason="wrong_n" if hint else "shape",
            )
