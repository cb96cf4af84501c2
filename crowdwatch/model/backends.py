"""Backends: what runs the network on a normalised, padded batch, and nothing else.

The :class:`~crowdwatch.model.predictor.Predictor` owns preprocessing, padding, decoding and batching;
a backend only maps the (B, 3, H, W) float32 batch to candidate logits (B, M) and points (B, M, 2), so
every backend counts through the same code and ``crowdwatch count`` equals ``crowdwatch run``.

- :class:`~crowdwatch.model.torch_backend.TorchBackend`: the P2PNet module, channels_last, under
  ``inference_mode`` and the precision policy (its own module: the one backend that imports torch).
- :class:`OpenVINOBackend`: an exported model (``crowdwatch export``): OpenVINO IR (``.xml``, fp32 or
  int8) or the ONNX file, which OpenVINO reads directly; or a crowdwatch checkpoint (``.pt``, the
  packaged weights too), built into the same graph without torch (:mod:`crowdwatch.model.ovgraph`).
  It needs the ``crowdwatch[openvino]`` extra, and never imports torch. One compiled model per input
  shape, kept in a small LRU cache: a new frame size compiles once, and a camera switching between
  sizes never recompiles on every frame.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from crowdwatch.choices import PRECISIONS
from crowdwatch.errors import CheckpointError, UsageError
from crowdwatch.model.meta import CheckpointMeta, parse_meta
from crowdwatch.model.ovgraph import INPUT_NAME, OUTPUT_NAMES
from crowdwatch.weightsfile import EXPORTED_SUFFIXES

__all__ = [
    "EXTRA_HINT",
    "INPUT_NAME",
    "METADATA_KEY",
    "OUTPUT_NAMES",
    "SHAPE_CACHE_SIZE",
    "TORCH_HINT",
    "Backend",
    "OpenVINOBackend",
    "import_openvino",
    "import_torch",
    "read_metadata",
    "read_model",
    "takes_arrays",
]

logger = logging.getLogger(__name__)

#: File endings of exported models (``crowdwatch export``); a ``.pt`` is a torch checkpoint.
EXTRA_HINT = "install the optional extra: pip install 'crowdwatch[openvino]'"
#: What to do where the torch backend is asked for and torch is not installed.
TORCH_HINT = (
    "install the optional extra: pip install 'crowdwatch[torch]', or run the openvino backend "
    "(--backend openvino; model.backend: openvino in a config)"
)
#: Key of the JSON metadata in ONNX ``metadata_props`` and in the IR's ``rt_info``.
METADATA_KEY = "crowdwatch"
#: Compiled models kept per backend (one per distinct input shape).
SHAPE_CACHE_SIZE = 8


class Backend(Protocol):
    """Runs the network: (B, 3, H, W) normalised float32 batch -> logits (B, M), points (B, M, 2).

    A backend whose ``takes_arrays`` is True takes the batch as a numpy array
    (:meth:`~crowdwatch.model.preprocess.Preprocessor.array`) and may return numpy arrays; the others
    take a torch tensor on their ``device`` (:meth:`~crowdwatch.model.preprocess.Preprocessor.batch`).
    The Predictor asks with :func:`takes_arrays`, so a backend without the attribute takes tensors.
    """

    name: str
    device: Any
    precision: str

    def __call__(self, batch: Any) -> Mapping[str, Any]: ...


def takes_arrays(backend: Backend) -> bool:
    """True when ``backend`` takes numpy batches (see :class:`Backend`)."""
    return bool(getattr(backend, "takes_arrays", False))


def __getattr__(name: str) -> Any:
    """``TorchBackend`` lives in :mod:`crowdwatch.model.torch_backend` (it imports torch); importing it
    from here still works, and loads torch only then."""
    if name == "TorchBackend":
        from crowdwatch.model.torch_backend import TorchBackend

        return TorchBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def import_openvino() -> ModuleType:
    """``import openvino``, or a UsageError (exit 2) naming the extra that provides it."""
    try:
        import openvino
    except ImportError as exc:
        raise UsageError(f"the openvino backend needs the OpenVINO runtime ({exc}); {EXTRA_HINT}") from None
    module: ModuleType = openvino
    return module


def import_torch() -> ModuleType:
    """``import torch`` (and torchvision, whose VGG16 builder the network uses), or a UsageError (exit 2)
    naming the extra that provides both."""
    try:
        import torch
        import torchvision  # noqa: F401 - only checked here; crowdwatch.model.backbone uses it
    except ImportError as exc:
        raise UsageError(f"the torch backend needs PyTorch ({exc}); {TORCH_HINT}") from None
    module: ModuleType = torch
    return module


def check_exported_path(path: Path) -> None:
    """A missing exported model, or an IR without its ``.bin``, is a CheckpointError."""
    if not path.is_file():
        raise CheckpointError(path, "no such file", reason="missing")
    if path.suffix.lower() == ".xml" and not path.with_suffix(".bin").is_file():
        raise CheckpointError(
            path, f"its weights file {path.with_suffix('.bin').name} is missing", reason="missing"
        )


def read_model(path: Path) -> Any:
    """``ov.Core().read_model`` with every failure turned into a CheckpointError."""
    ov = import_openvino()
    check_exported_path(path)
    try:
        return ov.Core().read_model(str(path))
    except Exception as exc:  # OpenVINO raises RuntimeError and its own types for bad files
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(path, f"is not a readable exported model ({first})", reason="corrupt") from None


def read_metadata(path: Path, model: Any) -> dict[str, Any]:
    """The JSON metadata ``crowdwatch export`` wrote: IR ``rt_info`` or ONNX ``metadata_props``."""
    text: str | None = None
    if path.suffix.lower() == ".onnx":
        try:
            import onnx
        except ImportError as exc:
            raise UsageError(f"reading an ONNX file's metadata needs onnx ({exc}); {EXTRA_HINT}") from None
        proto = onnx.load(str(path), load_external_data=False)
        text = next((p.value for p in proto.metadata_props if p.key == METADATA_KEY), None)
    elif model.has_rt_info([METADATA_KEY]):
        text = str(model.get_rt_info([METADATA_KEY]).astype(str))
    if text is None:
        raise CheckpointError(
            path,
            f"carries no crowdwatch metadata (key {METADATA_KEY!r}): not written by crowdwatch export, so "
            "its normalisation, threshold and N are unknown; export it again with crowdwatch export",
            reason="metadata",
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            path, f"its crowdwatch metadata is not valid JSON ({exc})", reason="metadata"
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(path, "its crowdwatch metadata is not a JSON object", reason="metadata")
    return data


def _precision_config(core: Any, precision: str) -> dict[str, Any]:
    """OpenVINO's CPU settings for ``precision`` (``auto``, ``fp32`` or ``bf16``); fp16 is refused."""
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, but got {precision!r}")
    if precision == "fp16":
        raise UsageError("precision fp16 is for CUDA; the openvino backend runs auto, fp32 or bf16")
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if precision != "auto":
        config["INFERENCE_PRECISION_HINT"] = {"fp32": "f32", "bf16": "bf16"}[precision]
    if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        logger.warning("this CPU has no native bf16 instructions: bf16 will be slower than fp32")
    return config


class OpenVINOBackend:
    """A model on OpenVINO's CPU plugin: an exported ``.xml``/``.onnx``, or a crowdwatch checkpoint
    (any other file, such as the packaged ``.pt``) built into the same graph without torch.

    ``precision``: ``auto`` lets the runtime choose (bf16 where the CPU has it, else fp32); ``fp32`` and
    ``bf16`` set the inference precision hint. An int8 model reports ``int8`` (its quantized layers run
    int8; the layers kept in higher precision run at the hint). ``threads``: OpenVINO's inference threads
    (``model.threads``; default: OpenVINO's own choice, one per physical core).
    """

    name = "openvino"
    takes_arrays = True
    device = "cpu"

    def __init__(self, path: str | Path, *, precision: str = "auto", threads: int | None = None) -> None:
        self.path = Path(path)
        ov = import_openvino()
        self._core = ov.Core()
        self._config = _precision_config(self._core, precision)
        if threads is not None:
            self._config["INFERENCE_NUM_THREADS"] = int(threads)
        if self.path.suffix.lower() in EXPORTED_SUFFIXES:
            model = read_model(self.path)
            self.metadata = read_metadata(self.path, model)
        else:
            from crowdwatch.model.ovgraph import build_from_checkpoint

            model, self.metadata = build_from_checkpoint(self.path)
            logger.info("openvino: built the network from %s", self.path.name)
        self.meta: CheckpointMeta = parse_meta(self.path, self.metadata, weights_key=None)
        self.quantized = self.metadata.get("export", {}).get("precision") == "int8"
        self._model = model
        self._compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._lock = threading.Lock()
        hint = self._config.get("INFERENCE_PRECISION_HINT")
        if hint is None:  # the runtime's own choice on this CPU: f32, or bf16 where it is native
            hint = self._core.get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
        #: int8 for a quantized model (its quantized layers); otherwise what the layers run in.
        self.precision = "int8" if self.quantized else {"f32": "fp32", "bf16": "bf16"}.get(hint, hint)

    def compiled_for(self, shape: tuple[int, ...]) -> Any:
        """The model compiled for one static input shape (cached, least recently used dropped)."""
        with self._lock:
            compiled = self._compiled.get(shape)
            if compiled is not None:
                self._compiled.move_to_end(shape)
                return compiled
            model = self._model.clone()
            model.reshape({model.inputs[0].get_any_name(): list(shape)})
            logger.info(
                "openvino: compiling %s for input shape %s", self.path.name, "x".join(map(str, shape))
            )
            compiled = self._core.compile_model(model, "CPU", self._config)
            self._compiled[shape] = compiled
            if len(self._compiled) > SHAPE_CACHE_SIZE:
                self._compiled.popitem(last=False)
            return compiled

    def __call__(self, batch: Any) -> dict[str, np.ndarray]:
        """``batch``: a numpy array (or a CPU torch tensor); returns numpy ``logits`` and ``points``."""
        if hasattr(batch, "detach"):  # a torch tensor, from a caller that batched for torch
            batch = batch.detach().cpu().numpy()
        array = np.ascontiguousarray(batch, dtype=np.float32)
        compiled = self.compiled_for(tuple(array.shape))
        # A fresh infer request per call: the worker and a benchmark may share one backend.
        outputs = compiled.create_infer_request().infer({0: array})
        logits = np.array(outputs[compiled.output(OUTPUT_NAMES[0])])
        points = np.array(outputs[compiled.output(OUTPUT_NAMES[1])])
        return {"logits": logits, "points": points}
