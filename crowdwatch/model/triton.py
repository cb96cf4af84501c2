"""The triton backend: the network runs on a shared NVIDIA Triton server, reached over gRPC (KServe v2).

The box keeps preprocessing and point decoding (the :class:`~crowdwatch.model.predictor.Predictor`'s own
code, as for every backend), and sends each normalised batch as one request; Triton's dynamic batcher
merges the requests of many boxes into one forward pass. Nothing here imports torch, and
``tritonclient`` is imported only when a :class:`TritonBackend` is made (``crowdwatch[triton]``).

The model's metadata (N, stride, normalisation, threshold: the JSON that ``crowdwatch export`` writes
into every exported model) is read from the model config's ``parameters["crowdwatch"]`` and checked
like a checkpoint's; the config's input and outputs are checked against what the box sends and decodes.

A pool that is down or slow is a fault, like a camera that is down: a request has a deadline
(``timeout_s``); a failed or late batch raises :class:`~crowdwatch.errors.InferenceUnavailable` (the worker
drops its frames under ``reason="inference_unavailable"``); further batches fail at once, without
touching the network, until the back-off (``retry_initial_s`` doubling up to ``retry_max_s``) has passed;
the reason is logged once per streak (:class:`~crowdwatch.logthrottle.LogThrottle`) and the recovery
once. :meth:`TritonBackend.fault` is the current reason, for /healthz.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from crowdwatch.errors import InferenceUnavailable, UsageError
from crowdwatch.logthrottle import LogThrottle
from crowdwatch.poolurl import DEFAULT_TRITON_MODEL, parse_grpc_url

__all__ = [
    "EXTRA_HINT",
    "INPUT_NAME",
    "METADATA_PARAMETER",
    "OUTPUT_NAMES",
    "TritonBackend",
    "TritonTarget",
    "check_model_config",
]

logger = logging.getLogger(__name__)

EXTRA_HINT = "install the optional extra: pip install 'crowdwatch[triton]'"
#: The model config parameter that holds crowdwatch's metadata (JSON, as exported models carry it).
METADATA_PARAMETER = "crowdwatch"
#: The network's input and outputs, the same names as the exported ONNX graph.
INPUT_NAME = "images"
OUTPUT_NAMES = ("logits", "points")


@dataclass(frozen=True)
class TritonTarget:
    """Where the pool is and how long to wait for it (``model.*`` of a ``backend: triton`` config)."""

    url: str
    name: str = DEFAULT_TRITON_MODEL
    timeout_s: float = 2.0
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def __post_init__(self) -> None:
        try:
            parse_grpc_url(self.url)
        except ValueError as exc:
            raise UsageError(f"triton url: {exc}") from None
        if self.timeout_s <= 0 or self.retry_initial_s <= 0 or self.retry_max_s < self.retry_initial_s:
            raise UsageError(
                "triton: timeout_s and retry_initial_s must be > 0, and retry_max_s >= retry_initial_s "
                f"(got {self.timeout_s}, {self.retry_initial_s}, {self.retry_max_s})"
            )

    @property
    def address(self) -> str:
        return parse_grpc_url(self.url)[0]

    @property
    def tls(self) -> bool:
        return parse_grpc_url(self.url)[1]


def _import_client() -> Any:
    try:
        import tritonclient.grpc as grpcclient
    except ImportError as exc:
        raise UsageError(f"the triton backend needs tritonclient[grpc] ({exc}); {EXTRA_HINT}") from None
    return grpcclient


def _readable(path: Path | None) -> str | None:
    """``path`` as tritonclient takes it (a file name, read when the channel is made), after checking
    that it can be read: a missing or unreadable file is a UsageError naming it."""
    if path is None:
        return None
    try:
        path.read_bytes()
    except OSError as exc:
        raise UsageError(f"triton tls: cannot read {path}: {exc.strerror or exc}") from None
    return str(path)


def _channel_args(target: TritonTarget) -> list[tuple[str, int]]:
    """tritonclient's own channel options, plus a reconnect back-off bounded by ``retry_max_s``: gRPC's
    default grows to 120 s, so a box would stay away from a pool that is back for up to two minutes."""
    most = 2**31 - 1
    return [
        ("grpc.max_send_message_length", most),
        ("grpc.max_receive_message_length", most),
        ("grpc.initial_reconnect_backoff_ms", int(target.retry_initial_s * 1000)),
        ("grpc.min_reconnect_backoff_ms", int(target.retry_initial_s * 1000)),
        ("grpc.max_reconnect_backoff_ms", int(target.retry_max_s * 1000)),
    ]


def check_model_config(where: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The crowdwatch metadata of a Triton model config (JSON form), after checking that the config
    takes what the box sends and returns what it decodes. UsageError naming ``where`` and the key."""
    problems = []
    if int(config.get("max_batch_size", 0)) < 1:
        problems.append("max_batch_size is 0: the model must batch (dims without the batch dimension)")
    inputs = {t.get("name"): t for t in config.get("input", [])}
    image = inputs.get(INPUT_NAME)
    if image is None or len(inputs) != 1:
        problems.append(f"expected one input {INPUT_NAME!r}, found {sorted(map(str, inputs))}")
    elif image.get("data_type") != "TYPE_FP32" or [int(d) for d in image.get("dims", [])][:1] != [3]:
        problems.append(f"input {INPUT_NAME!r} must be TYPE_FP32 [3, H, W], found {image}")
    outputs = {t.get("name"): t for t in config.get("output", [])}
    for name in OUTPUT_NAMES:
        if name not in outputs:
            problems.append(f"output {name!r} is missing (found {sorted(map(str, outputs))})")
    text = config.get("parameters", {}).get(METADATA_PARAMETER, {}).get("string_value")
    if text is None:
        problems.append(
            f"parameters[{METADATA_PARAMETER!r}] is missing: no N, stride, normalisation or threshold "
            "(serve it with crowdwatch serve, or a repository from crowdwatch export --format triton)"
        )
    if problems:
        raise UsageError(f"{where}: not a crowdwatch P2PNet model: " + "; ".join(problems))
    try:
        meta = json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: parameters[{METADATA_PARAMETER!r}] is not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{where}: parameters[{METADATA_PARAMETER!r}] is not a JSON object")
    return meta


class TritonBackend:
    """Runs the network on a Triton server: (B, 3, H, W) float32 -> logits (B, M), points (B, M, 2).

    Construction connects, reads the model config and checks it (UsageError when the model does not
    fit, :class:`InferenceUnavailable` when the pool does not answer). ``metadata`` is the model's
    crowdwatch metadata (parsed into a ``CheckpointMeta`` by the Predictor). A batch larger than the
    server's ``max_batch_size`` is sent in several requests; otherwise one batch is one request.
    It takes numpy batches (``takes_arrays``), so a box counting through a pool never imports torch.
    """

    takes_arrays = True

    name = "triton"
    #: Where the box builds the batch it sends (the pool's own device is the server's business).
    device: Any = "cpu"  # Any: the torch-based Backend protocol types it torch.device; "cpu" is accepted

    def __init__(self, target: TritonTarget, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self._clock = clock
        self._grpc = _import_client()
        self._client = self._grpc.InferenceServerClient(
            target.address,
            ssl=target.tls,
            root_certificates=_readable(target.ca),
            private_key=_readable(target.key),
            certificate_chain=_readable(target.cert),
            channel_args=_channel_args(target),
        )
        self._lock = threading.Lock()
        self._throttle = LogThrottle(logger)
        self._fault: str | None = None
        self._fault_since = 0.0
        self._retry_at = 0.0
        self._backoff = 0.0
        self._dropped_batches = 0
        where = f"triton model {target.name!r} at {target.url}"
        self.where = where
        try:  # not under the fault policy: a pool away at start is the caller's to wait for (or report)
            config = self._model_config()
        except self._grpc_errors() as exc:
            raise InferenceUnavailable(self._describe(exc)) from None
        self.metadata = check_model_config(where, config)
        self._config_json = json.dumps(self.metadata, sort_keys=True)
        self.max_batch_size = int(config["max_batch_size"])
        self.precision = str(self.metadata.get("export", {}).get("precision", "fp32"))

    # -- requests ------------------------------------------------------------------------------
    def _model_config(self) -> dict[str, Any]:
        answer = self._client.get_model_config(
            self.target.name, as_json=True, client_timeout=self.target.timeout_s
        )
        config: dict[str, Any] = answer.get("config", answer)
        return config

    def _infer(self, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grpc = self._grpc
        request = grpc.InferInput(INPUT_NAME, list(array.shape), "FP32")
        request.set_data_from_numpy(array)
        result = self._client.infer(
            self.target.name,
            [request],
            outputs=[grpc.InferRequestedOutput(name) for name in OUTPUT_NAMES],
            client_timeout=self.target.timeout_s,
        )
        return result.as_numpy(OUTPUT_NAMES[0]), result.as_numpy(OUTPUT_NAMES[1])

    def _call(self, what: str, step: Callable[[], Any]) -> Any:
        """Run one request under the fault policy: fail fast while backing off; a failure starts or
        extends the streak; the first success after a streak logs the recovery (and re-checks the model)."""
        now = self._clock()
        with self._lock:
            if self._fault is not None and now < self._retry_at:
                self._dropped_batches += 1
                raise InferenceUnavailable(self._fault)
        try:
            value = step()
            if self._fault is not None:
                self._recheck_model()
        except self._grpc_errors() as exc:
            self._failed(what, exc)
            raise InferenceUnavailable(str(self._fault)) from None
        self._recovered()
        return value

    def _grpc_errors(self) -> tuple[type[BaseException], ...]:
        from tritonclient.utils import InferenceServerException

        return (InferenceServerException, OSError)

    def _recheck_model(self) -> None:
        """After a streak the server may have been replaced: its model must still be the one in use."""
        from tritonclient.utils import InferenceServerException

        metadata = check_model_config(self.where, self._model_config())
        if json.dumps(metadata, sort_keys=True) != self._config_json:
            raise InferenceServerException(
                "the served model changed (N, normalisation or threshold differ from the model this box "
                "started with): restart the box to adopt it"
            )

    def _describe(self, exc: BaseException) -> str:
        """The fault's reason, for the log, /healthz and the dropped frames."""
        status = getattr(exc, "status", lambda: None)()
        text = exc.message() if hasattr(exc, "message") else str(exc)
        text = (text or type(exc).__name__).strip().splitlines()[0][:200]
        if status == "StatusCode.DEADLINE_EXCEEDED":
            text = f"no answer within {self.target.timeout_s:g} s (model.timeout_s)"
        return f"inference pool {self.target.url} ({self.target.name}) unavailable: {text}"

    def _failed(self, what: str, exc: BaseException) -> None:
        reason = self._describe(exc)
        now = self._clock()
        with self._lock:
            if self._fault is None:
                self._fault_since = now
                self._backoff = self.target.retry_initial_s
            else:
                self._backoff = min(self.target.retry_max_s, self._backoff * 2)
            self._fault = reason
            self._retry_at = now + self._backoff
            self._dropped_batches += 1
        self._throttle.log(
            "pool",
            logging.WARNING,
            "%s while %s; frames are dropped (reason inference_unavailable), retrying with back-off "
            "up to %g s",
            self._fault,
            what,
            self.target.retry_max_s,
        )

    def _recovered(self) -> None:
        with self._lock:
            if self._fault is None:
                return
            down_s, dropped = self._clock() - self._fault_since, self._dropped_batches
            self._fault, self._dropped_batches, self._backoff = None, 0, 0.0
        self._throttle.reset("pool")
        logger.info(
            "inference pool %s is back after %.1f s (%d batches dropped meanwhile)",
            self.target.url,
            down_s,
            dropped,
        )

    # -- the Backend interface -----------------------------------------------------------------
    def fault(self) -> str | None:
        """Why the pool cannot be used right now (None: it answered the last request)."""
        with self._lock:
            return self._fault

    def __call__(self, batch: Any) -> dict[str, Any]:
        """``batch``: a (B, 3, H, W) array or CPU tensor; returns arrays of the same kind as given."""
        array = np.ascontiguousarray(np.asarray(batch), dtype=np.float32)
        logits, points = [], []
        for start in range(0, len(array), self.max_batch_size):
            chunk = array[start : start + self.max_batch_size]
            got: tuple[np.ndarray, np.ndarray] = self._call("running a batch", partial(self._infer, chunk))
            logits.append(got[0])
            points.append(got[1])
        out_logits, out_points = np.concatenate(logits), np.concatenate(points)
        if type(batch).__module__.split(".")[0] == "torch":  # the torch-based Predictor decodes tensors
            import torch

            return {"logits": torch.from_numpy(out_logits), "points": torch.from_numpy(out_points)}
        return {"logits": out_logits, "points": out_points}
