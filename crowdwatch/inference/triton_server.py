"""The shared inference pool: an NVIDIA Triton server, through PyTriton, running crowdwatch's network.

``crowdwatch serve`` builds a :class:`PoolModel` (the network on the torch or openvino backend, the
same backends a box runs locally) and serves it as one Triton model with dynamic batching: the
requests of many boxes, each a preprocessed batch, are merged into one forward pass. The model config
carries the network's metadata under ``parameters["crowdwatch"]`` (what a box checks before counting,
:mod:`crowdwatch.model.triton`), and Triton's own Prometheus metrics
(``nv_inference_request_success``, ``nv_inference_exec_count``, queue and compute times) are served
on the metrics port.

PyTriton (``crowdwatch[serve]``) starts the ``tritonserver`` binary it ships, whose Python backend
stub embeds the system's ``libpython3.X.so``: run this under a Python of that very release (Debian's
``/usr/bin/python3``; docs/triton.md says why).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crowdwatch.errors import CrowdwatchError, UsageError
from crowdwatch.model.triton import INPUT_NAME, METADATA_PARAMETER, OUTPUT_NAMES
from crowdwatch.model.triton_repo import DEFAULT_MAX_BATCH, DEFAULT_QUEUE_DELAY_US

__all__ = ["PoolModel", "ServeSettings", "serve"]

logger = logging.getLogger(__name__)

SERVE_HINT = "install the server side: pip install 'crowdwatch[serve]' under Debian's /usr/bin/python3"


@dataclass(frozen=True)
class ServeSettings:
    """Where the server listens and how it batches. Every port binds ``address`` (loopback by
    default); Triton's HTTP endpoint, which PyTriton itself uses, stays on 127.0.0.1."""

    address: str = "127.0.0.1"
    grpc_port: int = 8001
    http_port: int = 8000
    metrics_port: int = 8002
    metrics_address: str = "127.0.0.1"
    name: str = "p2pnet"
    max_batch: int = DEFAULT_MAX_BATCH
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    instances: int = 1
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None


class PoolModel:
    """The network the pool serves: ``backend`` torch or openvino (a checkpoint, the packaged weights by
    default, or for openvino also an exported model), mapping a float32 (B, 3, H, W) batch to logits
    (B, M) and points (B, M, 2), plus its metadata. The openvino pool needs no torch."""

    def __init__(self, weights: str | Path | None, *, backend: str, precision: str = "auto") -> None:
        from crowdwatch.weightsfile import PACKAGED_WEIGHTS, resolve_weights

        path = resolve_weights(weights)
        if path is None:
            if not PACKAGED_WEIGHTS.is_file():
                raise UsageError("crowdwatch serve needs --weights: this install ships no packaged weights")
            path = PACKAGED_WEIGHTS
        if backend == "openvino":
            from crowdwatch.model.backends import OpenVINOBackend

            runner: Any = OpenVINOBackend(path, precision=precision)
            self.metadata: dict[str, Any] = dict(runner.metadata)
        elif backend == "torch":
            from crowdwatch.model.checkpoint import load_checkpoint, meta_payload
            from crowdwatch.model.torch_backend import TorchBackend

            net, meta = load_checkpoint(path)
            runner = TorchBackend(net, device="auto", precision=precision)
            self.metadata = {
                **meta_payload(meta),
                "export": {"format": "torch", "precision": runner.precision},
            }
        else:
            raise UsageError(f"crowdwatch serve runs the torch or openvino backend, not {backend!r}")
        self.runner = runner
        self.description = f"{path} on {backend} ({runner.precision}, {runner.device})"

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        batch = np.ascontiguousarray(images, dtype=np.float32)
        if getattr(self.runner, "takes_arrays", False):
            out = self.runner(batch)
            return {name: np.ascontiguousarray(out[name], dtype=np.float32) for name in OUTPUT_NAMES}
        import torch

        out = self.runner(torch.from_numpy(batch))
        return {name: np.ascontiguousarray(out[name].float().cpu().numpy()) for name in OUTPUT_NAMES}


def stub_python_problem(
    ld_library_path: str | None = None, ld_cache: Callable[[], str] | None = None
) -> str | None:
    """Why Triton's Python backend stub would not run this interpreter's code, or None when it would.

    The stub (a separate program) is linked against ``libpython3.X.so.1.0`` and gets whichever one the
    dynamic loader finds first (``LD_LIBRARY_PATH``, then the system's cache), while it reads the
    standard library of this interpreter's prefix. If that library is another build (e.g. Debian's
    3.11.2 under a pyenv 3.11.7), the C core and the standard library disagree and the model fails to
    load (``AttributeError: '_thread.RLock' object has no attribute '_recursion_count'``); a Python
    without any system ``libpython3.12.so`` makes the stub fail to start at all.
    """
    soname = sysconfig.get_config_var("INSTSONAME") or ""
    own = Path(str(sysconfig.get_config_var("LIBDIR") or "")) / soname
    if not soname.endswith(".so.1.0") or not own.exists():
        return f"{sys.executable} has no shared libpython ({soname or 'none'}): build it with --enable-shared"
    paths = os.environ.get("LD_LIBRARY_PATH", "") if ld_library_path is None else ld_library_path
    found = next((Path(d) / soname for d in paths.split(":") if d and (Path(d) / soname).exists()), None)
    if found is None:
        cache = (ld_cache or _ld_cache)()
        match = re.search(rf"^\s*{re.escape(soname)} \(.*\) => (\S+)$", cache, re.M)
        found = Path(match.group(1)) if match else None
    if found is None:
        return (
            f"the system has no {soname} for Triton's Python backend stub (apt-get install lib{soname[3:13]})"
        )
    if found.resolve() != own.resolve():
        return (
            f"Triton's Python backend stub would load {found}, not this interpreter's {own} "
            f"({sys.executable}, Python {sys.version.split()[0]}): run crowdwatch serve under the Python "
            f"that library belongs to (Debian: /usr/bin/python3), or put {own.parent} first on "
            "LD_LIBRARY_PATH"
        )
    return None


def _ld_cache() -> str:
    try:
        return subprocess.run(
            ["ldconfig", "-p"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return ""


def _import_pytriton() -> Any:
    try:
        import pytriton.triton
    except ImportError as exc:
        raise UsageError(f"crowdwatch serve needs PyTriton ({exc}); {SERVE_HINT}") from None
    return pytriton


def _triton_config(settings: ServeSettings) -> Any:
    from pytriton.triton import TritonConfig

    tls: dict[str, Any] = {}
    if settings.tls_cert is not None:
        tls = {
            "grpc_use_ssl": True,
            "grpc_server_cert": settings.tls_cert,
            "grpc_server_key": settings.tls_key,
            "grpc_use_ssl_mutual": settings.tls_client_ca is not None,
            "grpc_root_cert": settings.tls_client_ca,
        }
    return TritonConfig(
        grpc_address=settings.address,
        grpc_port=settings.grpc_port,
        http_address="127.0.0.1",
        http_port=settings.http_port,
        metrics_address=settings.metrics_address,
        metrics_port=settings.metrics_port,
        allow_metrics=True,
        allow_cpu_metrics=True,
        allow_gpu_metrics=True,
        exit_on_error=True,
        **tls,
    )


def _attach_metadata(triton: Any, name: str, metadata: dict[str, Any]) -> None:
    """Put the metadata into the model config PyTriton generates (``parameters["crowdwatch"]``).

    PyTriton offers no public field for model config parameters; it keeps its own (the workspace path)
    in the generated config's ``backend_parameters``, which it writes as ``parameters``. This adds one
    there before the model is loaded, and says so clearly if a PyTriton version lays it out otherwise.
    """
    try:
        model = next(m for m in triton._model_manager.models if m.model_name == name)
        model._get_triton_model_config().backend_parameters[METADATA_PARAMETER] = json.dumps(metadata)
    except (AttributeError, StopIteration) as exc:
        raise UsageError(
            f"this PyTriton version keeps its model config elsewhere ({exc}); crowdwatch serve was made "
            "for nvidia-pytriton 0.7"
        ) from None


def serve(
    model: PoolModel, settings: ServeSettings, stop: threading.Event, on_ready: Callable[[], None]
) -> None:
    """Serve ``model`` until ``stop`` is set (or the server dies: then CrowdwatchError); ``on_ready``
    runs once the model answers."""
    _import_pytriton()
    problem = stub_python_problem()
    if problem is not None:
        raise UsageError(f"crowdwatch serve: {problem} (docs/triton.md)")
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton

    @batch  # type: ignore[untyped-decorator]  # (PyTriton ships no type information)
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        return model(inputs[INPUT_NAME])

    # No preferred batch sizes: Triton then runs the largest batch (up to max_batch) that the requests
    # waiting within queue_delay_us make, and a full batch at once.
    config = ModelConfig(
        max_batch_size=settings.max_batch,
        batcher=DynamicBatcher(max_queue_delay_microseconds=settings.queue_delay_us),
    )
    # Not ``with Triton(...)``: entering it starts the server, and bind() would then load the model at once,
    # before its metadata is attached. Bind first, attach, then run.
    triton = Triton(config=_triton_config(settings))
    try:
        triton.bind(
            model_name=settings.name,
            infer_func=[infer] * settings.instances,
            inputs=[Tensor(name=INPUT_NAME, dtype=np.float32, shape=(3, -1, -1))],
            outputs=[
                Tensor(name=OUTPUT_NAMES[0], dtype=np.float32, shape=(-1,)),
                Tensor(name=OUTPUT_NAMES[1], dtype=np.float32, shape=(-1, 2)),
            ],
            config=config,
            strict=True,
        )
        _attach_metadata(triton, settings.name, model.metadata)
        try:
            triton.run()
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise CrowdwatchError(f"the Triton server could not load the model: {first}") from None
        logger.info(
            "serving %s as Triton model %r: gRPC on %s:%d, metrics on http://%s:%d/metrics",
            model.description,
            settings.name,
            settings.address,
            settings.grpc_port,
            settings.metrics_address,
            settings.metrics_port,
        )
        on_ready()
        while not stop.wait(1.0):
            if not triton.is_alive():
                raise CrowdwatchError("the Triton server stopped on its own: see its log above")
        logger.info("stopping the Triton server")
    finally:
        triton.stop()
