"""The pipeline's model: the checkpoint or exported network the config names, or (backend triton) the
shared inference pool, waited for with back-off when it is down at start, like a camera.

Imports of the model room happen inside the functions: torch is slow to import, and the pipeline loads
it only after the config is checked (the openvino and triton backends never load it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from crowdwatch.config import Config
from crowdwatch.errors import InferenceUnavailable
from crowdwatch.inference.worker import PredictorLike
from crowdwatch.logthrottle import LogThrottle

if TYPE_CHECKING:
    from crowdwatch.model.predictor import Predictor

__all__ = ["ModelFault", "ServedModel", "load_model"]

logger = logging.getLogger("crowdwatch.pipeline")

#: Why the model cannot count right now (backend triton: the pool's fault), or None; read by /healthz.
ModelFault = Callable[[], str | None]


class ServedModel(PredictorLike, Protocol):
    """What the pipeline needs of its model: ``predict``, and the device and precision for build_info."""

    @property
    def device(self) -> object: ...

    @property
    def precision(self) -> str: ...


def _no_fault() -> str | None:
    return None


def load_model(config: Config, stop: threading.Event) -> tuple[Predictor | None, ModelFault]:
    """The config's model and how to ask it for a fault; ``(None, ...)`` when ``stop`` was set while
    waiting for the inference pool."""
    from crowdwatch.model.predictor import Predictor

    model = config.model
    if model.backend == "triton":
        predictor = _wait_for_pool(config, stop)
        fault = getattr(predictor.backend, "fault", _no_fault) if predictor is not None else _no_fault
        return predictor, fault
    predictor = Predictor.from_checkpoint(
        model.weights,
        backend=model.backend,
        device=model.device,
        precision=model.precision,
        threshold=model.threshold,
        longest_side=model.longest_side,
        tile_pixels=model.tile_pixels,
        threads=model.threads,
    )
    return predictor, _no_fault


def _wait_for_pool(config: Config, stop: threading.Event) -> Predictor | None:
    """backend triton: the Predictor once the pool has answered (its model config holds the metadata);
    a pool that is down at start is waited for with back-off, like a camera; None after a stop."""
    from crowdwatch.model.predictor import Predictor
    from crowdwatch.model.triton import TritonTarget

    model = config.model
    tls = model.tls
    target = TritonTarget(
        str(model.url),
        name=model.name,
        timeout_s=model.timeout_s,
        retry_initial_s=model.retry_initial_s,
        retry_max_s=model.retry_max_s,
        ca=tls.ca if tls else None,
        cert=tls.cert if tls else None,
        key=tls.key if tls else None,
    )
    wait = model.retry_initial_s
    throttle = LogThrottle(logger)  # once as the wait starts, then once a minute
    while True:
        try:
            return Predictor.from_checkpoint(
                None,
                backend="triton",
                threshold=model.threshold,
                longest_side=model.longest_side,
                tile_pixels=model.tile_pixels,
                triton=target,
            )
        except InferenceUnavailable as exc:
            throttle.log(
                "pool",
                logging.WARNING,
                "%s; waiting for it (back-off up to %g s)",
                exc,
                model.retry_max_s,
            )
            if stop.wait(wait):
                return None
            wait = min(model.retry_max_s, wait * 2)
