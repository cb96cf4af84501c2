"""A real Triton pool for tests: ``crowdwatch serve`` (PyTriton's tritonserver) under ``.venv-serve``.

``scripts/bootstrap.sh test`` makes ``.venv-serve`` from Debian's ``/usr/bin/python3`` (the Python whose
``libpython3.11.so`` the Triton Python backend's stub loads) with ``crowdwatch[serve]``; it sees the
main venv's packages (openvino, crowdwatch) through a ``.pth`` file. Without it the tests that need a
pool skip, with the reason.

:class:`TritonPool` starts ``crowdwatch serve --backend openvino --precision fp32`` on three free loopback
ports in its own process group (PyTriton starts ``tritonserver`` and the Python backend's stub as
children), waits for its ``READY`` line, and stops the group it started: SIGTERM (a clean stop) or
SIGKILL (a crash).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from support.ports import free_port

if TYPE_CHECKING:
    from crowdwatch.model.predictor import Predictor

REPO = Path(__file__).resolve().parents[2]
SERVE_PYTHON = REPO / ".venv-serve" / "bin" / "python"
#: A first start on a cold machine loads tritonserver, the Python backend's stub and OpenVINO from disk;
#: this waits for a behaviour (the READY line), never for a rate.
READY_TIMEOUT_S = 300.0


def pool_missing() -> str | None:
    """Why no pool can run here, or None when it can."""
    if not SERVE_PYTHON.exists():
        return f"{SERVE_PYTHON} not found: scripts/bootstrap.sh test makes it (crowdwatch[serve])"
    probe = subprocess.run(
        [str(SERVE_PYTHON), "-c", "import pytriton.triton, openvino, crowdwatch"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        return f"{SERVE_PYTHON} cannot import pytriton, openvino and crowdwatch: {probe.stderr[-300:]}"
    return None


class TritonPool:
    """One ``crowdwatch serve`` process group; restartable on the same ports."""

    def __init__(
        self,
        weights: Path,
        log_dir: Path,
        *,
        max_batch: int = 8,
        queue_delay_us: int = 20000,
        threads: int = 1,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.weights = weights
        self.log_path = log_dir / "serve.log"
        self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        self.max_batch = max_batch
        self.queue_delay_us = queue_delay_us
        self.threads = threads  # the network's CPU threads in the pool (tests: 1, beside the boxes)
        self.extra = extra  # more crowdwatch serve options (TLS)
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def argv(self) -> list[str]:
        return [
            str(SERVE_PYTHON), "-m", "crowdwatch", "serve", "--backend", "openvino",
            "--weights", str(self.weights), "--port", str(self.grpc_port),
            "--http-port", str(self.http_port), "--metrics-port", str(self.metrics_port),
            "--max-batch", str(self.max_batch), "--queue-delay-us", str(self.queue_delay_us),
            "--precision", "fp32", *self.extra,
        ]  # fmt: skip

    def start(self) -> TritonPool:
        assert self.process is None, "already running"
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), PYTHONPATH=str(REPO))
        log = open(self.log_path, "a")
        try:
            self.process = subprocess.Popen(
                self.argv(),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                errors="replace",
                env=env,
                start_new_session=True,
            )
        finally:
            log.close()
        assert self.process.stdout is not None
        # A thread reads every line: select() on the pipe misses a line already in the text reader's
        # buffer (two lines arriving together left READY unseen until the timeout), and the pipe
        # never fills while the server runs.
        lines: queue.Queue[str | None] = queue.Queue()  # None: the pipe reached its end
        stdout = self.process.stdout

        def read_lines() -> None:
            try:
                for line in stdout:
                    lines.put(line)
            except (OSError, ValueError):  # stop() closed the pipe (bytes that are not UTF-8 are replaced)
                return
            lines.put(None)

        threading.Thread(target=read_lines, daemon=True).start()
        started = time.monotonic()
        seen: list[str] = []
        exited_at: float | None = None
        while time.monotonic() < started + READY_TIMEOUT_S:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                # tritonserver shares the pipe and can outlive a serve process that died
                if exited_at is None and self.process.poll() is not None:
                    exited_at = time.monotonic()
                if exited_at is not None and time.monotonic() - exited_at > 5.0:
                    break
                continue
            if line is None:
                break  # its stdout closed: it exited, and every line it wrote was read
            # tritonserver writes to the same pipe: READY may follow a piece of one of its lines
            if "READY grpc://" in line:
                return self
            seen.append(line)
        returncode = self.process.poll()
        self.stop(signal.SIGKILL)
        raise AssertionError(
            f"crowdwatch serve printed no READY line in {time.monotonic() - started:.0f} s "
            f"(exit code: {returncode}, None = still running); its stdout ends:\n{''.join(seen[-15:])}\n"
            f"its log ends:\n{self.log_path.read_text()[-4000:]}"
        )

    def metrics(self) -> dict[str, float]:
        """Triton's own counters for the model: ``nv_inference_request_success`` and friends."""
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        )
        values = {}
        for name, value in re.findall(r"^(nv_inference_[a-z_]+)\{[^}]*\} ([0-9.e+]+)$", text, re.M):
            values[name] = values.get(name, 0.0) + float(value)
        return values

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process group this pool started (SIGKILL: a crash, nothing cleaned up)."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, sig)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            _wait_group_gone(process.pid)  # tritonserver and the stub: their ports are free only then
        finally:
            if process.stdout is not None:
                process.stdout.close()


def _wait_group_gone(pgid: int, timeout: float = 30.0) -> None:
    """Wait until no process of group ``pgid`` is left (tritonserver frees its ports only then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)


#: How far a person score may move between two runs of the same IR at fp32 that differ only in batch
#: composition, thread split or CPU (the kernels sum in another order): round-off of ~1e-7 relative per
#: addition, over the few thousand terms of a VGG16 convolution, stays below 1e-5 in a logit, and a
#: probability moves at most a quarter of that. 1e-3 is a hundredfold margin; it is not a bf16 margin
#: (bf16 keeps 8 bits), which is why the pool and the local side both run fp32 in these tests.
SCORE_MARGIN = 1e-3


def count_band(predictor: Predictor, images: Sequence[np.ndarray]) -> list[range]:
    """The counts another fp32 run of the same model may give on each image: from the count with the
    threshold raised by :data:`SCORE_MARGIN` to the count with it lowered (one value where no score lies
    that close to the threshold, the usual case). One run at the lowered threshold gives both ends: a
    point is kept when its score is above the threshold."""
    threshold = predictor.threshold
    predictor.threshold = threshold - SCORE_MARGIN
    try:
        low = predictor.predict(images)
    finally:
        predictor.threshold = threshold
    return [range(int(np.sum(p.scores > threshold + SCORE_MARGIN)), p.count + 1) for p in low]
