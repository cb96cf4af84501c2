"""Exporting a trained checkpoint for shipping: float16 weights plus the evaluation that justifies them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crowdwatch.model.checkpoint import load_checkpoint, save_checkpoint


def export_weights(src: str | Path, dst: str | Path, *, extra_provenance: Mapping[str, Any] | None = None,
                   threshold: float | None = None, half: bool = True) -> Path:
    """Re-save ``src`` as ``dst`` (float16 by default), its provenance updated with ``extra_provenance``.

    ``threshold`` replaces the checkpoint's default score threshold (e.g. one chosen on validation).
    """
    net, meta = load_checkpoint(src)
    provenance = {**meta.provenance, **dict(extra_provenance or {}), "exported_from": Path(src).name}
    threshold = meta.default_threshold if threshold is None else threshold
    return save_checkpoint(dst, net, threshold=threshold, provenance=provenance, half=half,
                           mean=meta.mean, std=meta.std)
