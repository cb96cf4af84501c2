"""Weights files as users name them, checked without loading a network (nor importing torch).

``default`` names the packaged weights everywhere a weights file is asked for (``--weights default``,
``model.weights: default``, ``model.init_from: default``). :func:`weights_problem` says why a file cannot
be what a backend runs, from its name and first bytes: ``crowdwatch check-config`` uses it so that a
missing or mistaken file is found before the service starts.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_NAME", "EXPORTED_SUFFIXES", "PACKAGED_WEIGHTS", "resolve_weights", "weights_problem"]

#: The packaged default weights (shipped with the wheel, loaded with no download).
PACKAGED_WEIGHTS = Path(__file__).resolve().parent / "weights" / "p2pnet_default.pt"
#: The name that stands for :data:`PACKAGED_WEIGHTS`.
DEFAULT_NAME = "default"
#: Exported models (crowdwatch export), which only the openvino backend runs; any other file is a
#: checkpoint (.pt), which both backends run (openvino builds its graph from it, without torch).
EXPORTED_SUFFIXES = (".xml", ".onnx")

_ZIP = b"PK\x03\x04"  # torch.save's format since torch 1.6
_PICKLE = b"\x80"  # the legacy format: a pickle (protocol 2 or later)


def resolve_weights(value: str | Path | None) -> Path | None:
    """``default`` -> :data:`PACKAGED_WEIGHTS`; a path stays itself; None stays None."""
    if value is None:
        return None
    return PACKAGED_WEIGHTS if str(value) == DEFAULT_NAME else Path(value)


def weights_problem(path: Path, backend: str) -> str | None:
    """Why ``path`` cannot be what ``backend`` (``torch`` or ``openvino``) runs; None when it can."""
    if not path.exists():
        return "no such file"
    if not path.is_file():
        return "not a file"
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        return "the file is empty"
    exported = path.suffix.lower() in EXPORTED_SUFFIXES
    if backend == "openvino":
        return _exported_problem(path, head) if exported else _openvino_checkpoint_problem(head)
    if exported:
        return "backend torch runs a .pt checkpoint; set model.backend: openvino for an exported model"
    if not (head.startswith(_ZIP) or head.startswith(_PICKLE)):
        return "not a PyTorch checkpoint (neither torch.save's zip format nor a pickle)"
    return None


def _openvino_checkpoint_problem(head: bytes) -> str | None:
    """A checkpoint for the openvino backend, which reads torch.save's zip format without torch."""
    if head.startswith(_ZIP):
        return None
    if head.startswith(_PICKLE):
        return (
            "backend openvino reads checkpoints in torch.save's zip format only (torch >= 1.6), and "
            "this one is in the legacy format; load and save it again with torch, or export it"
        )
    return "not a PyTorch checkpoint (torch.save's zip format) nor an exported .xml or .onnx"


def _exported_problem(path: Path, head: bytes) -> str | None:
    """An exported model: an IR's .xml needs its <net> and its .bin beside it."""
    if path.suffix.lower() == ".xml":
        if b"<net" not in head:
            return "not an OpenVINO IR file (no <net> element at its start)"
        if not path.with_suffix(".bin").is_file():
            return f"its weights file {path.with_suffix('.bin').name} is missing"
    return None
