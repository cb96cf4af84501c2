"""Measuring the model on this machine: the frame counted, one timed run, its memory, its record.

``crowdwatch benchmark`` (:mod:`crowdwatch.commands.benchmark`) runs each :class:`Job` in a fresh
process, so that its peak resident memory is its own, and prints the :class:`Measurement` records side
by side. The paths (:data:`PATHS`):

- naive: how the published inference script runs the model: fp32, NCHW, one frame at a time, autograd
  left on (no ``inference_mode``/``no_grad``);
- crowdwatch: the :class:`~crowdwatch.model.Predictor` as the pipeline uses it (its precision,
  channels_last, ``inference_mode``, batches of :attr:`Job.batch` frames), on the job's backend;
- openvino, int8: the Predictor on an exported fp32 IR and on an int8 IR.

Every path counts the same frame (:func:`benchmark_frame`), scaled to each resolution. Nothing here
parses arguments or prints: the command does both.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from crowdwatch.demo import render_frames
from crowdwatch.images import read_image
from crowdwatch.model import P2PNet, Predictor, decode
from crowdwatch.model.checkpoint import CheckpointMeta, load_checkpoint, packaged_weights
from crowdwatch.model.precision import cpu_has_native_bf16
from crowdwatch.model.preprocess import Preprocessor, padded_size
from crowdwatch.model.triton import TritonTarget
from crowdwatch.weightsfile import EXPORTED_SUFFIXES, PACKAGED_WEIGHTS, resolve_weights

__all__ = [
    "DEMO_PEOPLE",
    "DEMO_SEED",
    "DEMO_SIZE",
    "PATHS",
    "RESOLUTIONS",
    "Job",
    "Measurement",
    "benchmark_frame",
    "conv_flops",
    "measure",
    "measured_peak_flops",
    "peak_dtype",
    "scaled_frame",
]

#: The packaged demo frame: the synthetic demo clip's first frame (640x480, this many people drawn).
DEMO_SIZE, DEMO_PEOPLE, DEMO_SEED = (640, 480), 40, 0
PATHS = ("naive", "crowdwatch", "openvino", "int8")
#: name -> (height, width)
RESOLUTIONS = {"640x360": (360, 640), "1280x720": (720, 1280), "1920x1080": (1080, 1920)}


@dataclass(frozen=True)
class Job:
    """One measurement: ``path`` at ``resolution``, timed over ``iters`` steps after one warm-up step.

    ``weights``: the checkpoint (None: the packaged one; an exported file runs on the crowdwatch path,
    while the naive path runs the packaged checkpoint); ``openvino_model``/``int8_model``: the exported
    files the openvino and int8 paths run; ``triton``: the pool, with ``backend="triton"``.
    """

    path: str
    resolution: str
    iters: int = 3
    batch: int = 1
    precision: str = "auto"
    threads: int = 1
    device: str = "cpu"
    backend: str = "torch"
    weights: Path | None = None
    openvino_model: str | None = None
    int8_model: str | None = None
    image: Path | None = None
    triton: TritonTarget | None = None

    def __post_init__(self) -> None:
        if self.path not in PATHS:
            raise ValueError(f"path must be one of {', '.join(PATHS)}, but got {self.path!r}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(
                f"resolution must be one of {', '.join(RESOLUTIONS)}, but got {self.resolution!r}"
            )
        if self.iters < 1 or self.batch < 1 or self.threads < 1:
            raise ValueError(
                f"iters, batch and threads must be >= 1, but got {self.iters}, {self.batch}, {self.threads}"
            )


@dataclass(frozen=True)
class Measurement:
    """What one :class:`Job` measured: frames/s (the median step), memory, and the count it found."""

    path: str
    resolution: str
    precision: str
    backend: str
    batch: int  # frames per timed step
    fps: float
    seconds_per_frame: float
    peak_rss_mib: float  # the process's peak resident memory
    loaded_rss_mib: float  # resident memory once torch, OpenCV and the weights were loaded
    peak_gpu_mib: float | None  # torch's peak allocated GPU memory (None on a CPU)
    count: int  # people found in the frame, by the last step
    flops_per_frame: float  # the convolutions' floating-point operations for one frame

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(**data)


def benchmark_frame(image: Path | None) -> tuple[np.ndarray, str]:
    """The frame to count (``image``, or the packaged demo frame) and what it is, for the report.
    OSError when ``image`` cannot be read."""
    if image is not None:
        return read_image(image), str(image)
    width, height = DEMO_SIZE
    frame = render_frames(width, height, 1, DEMO_PEOPLE, seed=DEMO_SEED)[0]
    return frame, f"the packaged synthetic demo frame ({DEMO_PEOPLE} people drawn, {width}x{height})"


def scaled_frame(height: int, width: int, image: Path | None = None) -> np.ndarray:
    """:func:`benchmark_frame` scaled to ``width`` x ``height``."""
    frame, _ = benchmark_frame(image)
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)


def conv_flops(net: torch.nn.Module, height: int, width: int) -> float:
    """Multiply-adds x 2 of every convolution for one (height, width) input, padded as the model pads it.

    Counted on a 64x64 input and scaled by the area: with sides multiples of 16, every feature map's
    area is the input's divided by a fixed power of 4, so the scaling is exact (and costs no full run).
    """
    flops = 0.0
    padded_h, padded_w = padded_size(height, width)

    def hook(module: torch.nn.Conv2d, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal flops
        k = module.kernel_size[0] * module.kernel_size[1]
        flops += 2.0 * module.in_channels * module.out_channels * k * output.shape[-2] * output.shape[-1]

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        net(torch.zeros(1, 3, 64, 64))
    for handle in handles:
        handle.remove()
    return flops * (padded_h * padded_w) / (64 * 64)


def peak_dtype() -> torch.dtype:
    """bf16 where the CPU has it natively; elsewhere fp32 (emulated bf16 is slow and no peak at all)."""
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def measured_peak_flops(trials: int = 5, seconds: float = 1.0) -> float:
    """FLOP/s of a large matrix product on this CPU in :func:`peak_dtype`, best of several trials (what
    oneDNN reaches at best; the best trial is the one least disturbed by other load)."""
    size = 2048
    a = torch.randn(size, size, dtype=peak_dtype())
    b = torch.randn(size, size, dtype=peak_dtype())
    torch.mm(a, b)
    best = 0.0
    for _ in range(trials):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            torch.mm(a, b)
            n += 1
        best = max(best, n * 2 * size**3 / (time.perf_counter() - start))
    return best


def current_rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _load(weights: Path | None) -> tuple[P2PNet, CheckpointMeta]:
    """The checkpoint the naive path runs (and whose convolutions are counted)."""
    if weights and weights.suffix.lower() in EXPORTED_SUFFIXES:
        weights = None  # an exported model runs on the other paths; the naive one runs the checkpoint
    path = resolve_weights(weights) or packaged_weights()
    if path:
        return load_checkpoint(path)
    torch.manual_seed(0)
    net = P2PNet().eval()
    with torch.no_grad():  # spread the logits so counts are not decided by rounding noise
        net.classification.output.weight.mul_(20.0)
    return net, CheckpointMeta(num_candidates=4)


def _predictor(job: Job, net: P2PNet, meta: CheckpointMeta) -> Predictor:
    """The Predictor of the crowdwatch, openvino and int8 paths."""
    if job.path == "crowdwatch" and job.backend == "torch":
        return Predictor(net, meta, device=job.device, precision=job.precision)
    if job.path == "crowdwatch" and job.backend == "triton":
        return Predictor.from_checkpoint(
            job.weights, backend="triton", device=job.device, precision=job.precision, triton=job.triton
        )
    weights = str(resolve_weights(job.weights) or PACKAGED_WEIGHTS)  # a .pt runs on OpenVINO too
    model = {"crowdwatch": weights, "openvino": job.openvino_model, "int8": job.int8_model}
    return Predictor.from_checkpoint(model[job.path], backend="openvino", precision=job.precision)


def _median_step_s(step: Callable[[], None], iters: int) -> float:
    """Median seconds of ``step`` over ``iters`` runs, after one untimed warm-up run (kernel selection,
    allocator growth). Decoding reads the results back, so a GPU has finished when ``step`` returns."""
    step()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(job: Job) -> Measurement:
    """Run ``job`` in this process (its threads set for the whole process) and return what it measured.
    Its peak memory is this process's: run one job per process for figures of its own."""
    torch.set_num_threads(job.threads)
    height, width = RESOLUTIONS[job.resolution]
    frame = scaled_frame(height, width, job.image)
    net, meta = _load(job.weights)
    counts: list[int] = []
    device = torch.device(job.device)
    if job.path == "naive":
        net = net.float().eval().to(device)
        pre = Preprocessor(mean=meta.mean, std=meta.std)

        def step() -> None:
            batch, geos = pre([frame])  # one frame at a time, NCHW float32, autograd on
            out = net(batch.to(device))
            counts.append(
                decode(out["logits"].detach(), out["points"].detach(), geos, meta.default_threshold)[0].count
            )

        frames_per_step, precision, backend = 1, "fp32", "torch"
    else:
        predictor = _predictor(job, net, meta)
        frames = [frame] * job.batch

        def step() -> None:
            counts.append(predictor.predict(frames)[0].count)

        frames_per_step, precision, backend = job.batch, predictor.precision, predictor.backend.name
    baseline_rss = current_rss_mib()  # torch, OpenCV and the loaded weights
    per_step = _median_step_s(step, job.iters)
    return Measurement(
        path=job.path,
        resolution=job.resolution,
        precision=precision,
        backend=backend,
        batch=frames_per_step,
        fps=frames_per_step / per_step,
        seconds_per_frame=per_step / frames_per_step,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        loaded_rss_mib=baseline_rss,
        peak_gpu_mib=torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
        count=counts[-1],
        flops_per_frame=conv_flops(net.float().cpu(), height, width),
    )
