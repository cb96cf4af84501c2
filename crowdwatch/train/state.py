"""Training state on disk: everything needed to resume a run exactly.

The state holds the model, optimiser, scheduler and grad-scaler state dicts, the RNG states of
Python, NumPy and torch (CPU and CUDA), the step, the best validation result so far and the wall
time spent. The data order needs no state: it is a function of (seed, step) (see ``dataset``).
Files are written with :func:`crowdwatch.fileio.atomic_file`, so a crash never leaves half a state.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crowdwatch.errors import UsageError
from crowdwatch.fileio import atomic_file

STATE_VERSION = 1


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, **state: Any) -> None:
    """Atomically write a training state (keyword arguments become its keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        torch.save({"version": STATE_VERSION, "rng": rng_state(), **state}, fh)


def load_state(path: Path) -> dict[str, Any]:
    """Read a training state written by :func:`save_state`."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise UsageError(f"{path}: cannot read training state ({exc})") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise UsageError(f"{path}: not a crowdwatch training state (version {STATE_VERSION})")
    return state
