"""Backends: what runs the network on a normalised, padded batch, and nothing else.

The :class:`~crowdwatch.model.predictor.Predictor` owns preprocessing, padding, decoding and batching;
a backend only maps the (B, 3, H, W) float32 batch to candidate logits (B, M) and points (B, M, 2), so
every backend counts through the same code and ``crowdwatch count`` equals ``crowdwatch run``.

- :class:`TorchBackend`: the P2PNet module, channels_last, under ``inference_mode`` and the precision policy.
- :class:`OpenVINOBackend`: an exported model (``crowdwatch export``): OpenVINO IR (``.xml``, fp32 or
  int8) or the ONNX file, which OpenVINO reads directly. It needs the ``crowdwatch[openvino]`` extra.
  One compiled model per input shape, kept in a small LRU cache: a new frame size compiles once, and
  a camera switching between sizes never recompiles on every frame.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import torch

from crowdwatch.errors import CheckpointError, UsageError
from crowdwatch.model.checkpoint import CheckpointMeta, parse_meta
from crowdwatch.model.p2pnet import P2PNet
from crowdwatch.model.precision import resolve_inference_precision
from crowdwatch.weightsfile import EXPORTED_SUFFIXES

logger = logging.getLogger(__name__)

#: File endings of exported models (``crowdwatch export``); a ``.pt`` is a torch checkpoint.
EXTRA_HINT = "install the optional extra: pip install 'crowdwatch[openvino]'"
#: Key of the JSON metadata in ONNX ``metadata_props`` and in the IR's ``rt_info``.
METADATA_KEY = "crowdwatch"
#: The exported graph's input and outputs.
INPUT_NAME = "images"
OUTPUT_NAMES = ("logits", "points")
#: Compiled models kept per backend (one per distinct input shape).
SHAPE_CACHE_SIZE = 8


class Backend(Protocol):
    """Runs the network: (B, 3, H, W) normalised float32 batch -> logits (B, M), points (B, M, 2)."""

    name: str
    device: torch.device
    precision: str

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]: ...


class TorchBackend:
    """The PyTorch module. ``fp16`` converts the weights to half (CUDA); ``bf16`` runs float32 weights
    under bf16 autocast; every precision runs channels_last under ``torch.inference_mode()``."""

    name = "torch"

    def __init__(self, net: P2PNet, *, device: str | torch.device, precision: str) -> None:
        from crowdwatch.model.precision import resolve_device

        self.device = resolve_device(device)
        self.precision = resolve_inference_precision(precision, self.device)
        # torch's stubs lack the (device, memory_format) overload that Module.to accepts at runtime.
        net = net.eval().to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit memory_format on this overload
        if self.precision == "fp16":
            net = net.half()
        for param in net.parameters():
            param.requires_grad_(False)
        self.net = net

    @contextlib.contextmanager
    def _precision_context(self) -> Iterator[None]:
        if self.precision == "bf16":
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                yield
        else:
            yield

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.inference_mode(), self._precision_context():
            batch = batch.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            if self.precision == "fp16":
                batch = batch.half()
            out: dict[str, torch.Tensor] = self.net(batch)
            return out


def import_openvino() -> ModuleType:
    """``import openvino``, or a UsageError (exit 2) naming the extra that provides it."""
    try:
        import openvino
    except ImportError as exc:
        raise UsageError(f"the openvino backend needs the OpenVINO runtime ({exc}); {EXTRA_HINT}") from None
    module: ModuleType = openvino
    return module


def check_exported_path(path: Path) -> None:
    """Missing files and files of the wrong kind are CheckpointErrors that say what to pass instead."""
    if path.suffix.lower() not in EXPORTED_SUFFIXES:
        raise CheckpointError(
            path,
            "the openvino backend runs an exported model (.xml or .onnx); make one with: "
            f"crowdwatch export --weights {path} --format openvino --out DIR",
            reason="architecture",
        )
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


class OpenVINOBackend:
    """An exported model on OpenVINO's CPU plugin.

    ``precision``: ``auto`` lets the runtime choose (bf16 where the CPU has it, else fp32); ``fp32`` and
    ``bf16`` set the inference precision hint. An int8 model reports ``int8`` (its quantized layers run
    int8; the layers kept in higher precision run at the hint). ``threads``: OpenVINO's inference threads
    (default: torch's thread count, so ``model.threads`` sets both).
    """

    name = "openvino"

    def __init__(self, path: str | Path, *, precision: str = "auto", threads: int | None = None) -> None:
        self.path = Path(path)
        self.device = torch.device("cpu")
        ov = import_openvino()
        model = read_model(self.path)
        self.metadata = read_metadata(self.path, model)
        self.meta: CheckpointMeta = parse_meta(self.path, self.metadata, weights_key=None)
        export = self.metadata.get("export", {})
        self.quantized = export.get("precision") == "int8"
        if precision == "fp16":
            raise UsageError("precision fp16 is for CUDA; the openvino backend runs auto, fp32 or bf16")
        resolve_inference_precision(precision, self.device)  # validates, warns on emulated bf16
        self._config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if precision != "auto":
            self._config["INFERENCE_PRECISION_HINT"] = {"fp32": "f32", "bf16": "bf16"}[precision]
        self._config["INFERENCE_NUM_THREADS"] = int(threads or torch.get_num_threads())
        self._core = ov.Core()
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

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        array = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        compiled = self.compiled_for(tuple(array.shape))
        # A fresh infer request per call: the worker and a benchmark may share one backend.
        outputs = compiled.create_infer_request().infer({0: array})
        logits = torch.from_numpy(np.array(outputs[compiled.output(OUTPUT_NAMES[0])]))
        points = torch.from_numpy(np.array(outputs[compiled.output(OUTPUT_NAMES[1])]))
        return {"logits": logits, "points": points}
