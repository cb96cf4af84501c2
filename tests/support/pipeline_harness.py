"""Helpers for the end-to-end pipeline tests: run ``python -m crowdwatch run`` as a real subprocess and
read its real outputs (CSV from disk, /metrics over HTTP, logs). No tests live here.

:func:`running_pipeline` is the one way to run a pipeline process, for the tests and for the
benchmarks and scripts that need a running pipeline (they import it from ``tests/support``, as
``benchmarks/bench_triton.py`` does its pool; nothing here imports torch)::

    with running_pipeline(config, tmp_path) as pipeline:  # started, and serving /metrics
        pipeline.wait_for("a frame", lambda: (pipeline.value("crowdwatch_frames_processed_total",
                                                             camera="cam") or 0) >= 1, timeout=60)
    # stopped by its PID whatever happened inside: SIGTERM, then SIGKILL after ``stop_timeout``
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
_METRICS_LINE = re.compile(r"serving /metrics and /healthz on (http://[\d.]+:\d+)")
#: ``crowdwatch run`` as a user starts it.
RUN = (sys.executable, "-m", "crowdwatch", "run")
#: ``crowdwatch run`` with a model slower than the stop budget (``tests/support/slow_pipeline.py``).
SLOW_RUN = (sys.executable, str(REPO / "tests" / "support" / "slow_pipeline.py"))
#: How long a stop by SIGTERM may take before SIGKILL: the pipeline's stop budget (9 s) and its exit.
STOP_TIMEOUT_S = 20.0
#: How much of the log an error carries.
LOG_TAIL_CHARS = 4000


class PipelineFailed(AssertionError):
    """The pipeline process did not do what was waited for (it exited, or the time ran out); the message
    ends with the tail of its log, also kept as ``log_tail``. An AssertionError, so a test fails."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"{message}\n--- last lines of the pipeline's log ---\n{log_tail}")
        self.log_tail = log_tail


def write_config(path: Path, cameras: list[dict[str, Any]], **sections: Any) -> Path:
    """A config file with small, fast, deterministic settings unless ``sections`` override them."""
    config: dict[str, Any] = {
        "model": {"precision": "fp32", "device": "cpu", "threads": 1, "max_batch": 4, "max_wait_ms": 50},
        "cameras": cameras,
        "output": {
            "dir": str(path.parent / "out"),
            "csv": {"flush_interval_s": 1.0},
            "snapshots": {"interval_s": 1.0},
        },
        "metrics": {"address": "127.0.0.1", "port": 0},
    }
    config.update(sections)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_still_clip(path: Path, image: np.ndarray, frames: int = 20, fps: float = 10.0) -> Path:
    """An MJPG AVI repeating one image: every frame is the same JPEG, so every decoded frame is the same."""
    height, width = image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), f"cannot write {path}"
    for _ in range(frames):
        writer.write(image)
    writer.release()
    return path


def decode_first_frame(path: Path) -> np.ndarray:
    """Frame 0 of a clip, decoded by the same OpenCV/FFmpeg path the pipeline's file reader uses."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    ok, image = capture.read()
    capture.release()
    assert ok and image is not None, f"cannot decode {path}"
    return image


def read_csv_rows(directory: Path) -> list[dict[str, str]]:
    """Every row of every counts-*.csv, checked strictly: one header, every row complete."""
    rows: list[dict[str, str]] = []
    for path in sorted(directory.glob("counts-*.csv")):
        data = path.read_bytes()
        assert data.endswith(b"\n"), f"{path.name}: last row has no newline (half-written)"
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            assert header[:4] == ["time_utc", "camera", "frame", "count"] and header[-1] == "latency_s"
            for line in reader:
                assert len(line) == len(header), f"{path.name}: row with {len(line)} fields: {line}"
                assert line[0] != "time_utc", f"{path.name}: repeated header"
                rows.append(dict(zip(header, line, strict=True)))
    return rows


def count_cli(images: list[Path], env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """`python -m crowdwatch count --json` on ``images`` (fp32 on the CPU, like the pipeline tests' config),
    keyed by file stem."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "crowdwatch",
            "count",
            "--precision",
            "fp32",
            "--device",
            "cpu",
            "--json",
            *map(str, images),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {Path(item["image"]).stem: item for item in json.loads(out.stdout)["images"]}


def write_lossless_still_h264(path: Path, image: np.ndarray, seconds: float = 120, fps: int = 10) -> Path:
    """An H.264 mp4 (Debian ffmpeg, libx264 -qp 0: lossless) repeating ``image``. Served through the RTSP
    server unchanged, every frame a client decodes is bit-identical to frame 0 decoded from the file."""
    still = path.with_suffix(".src.png")
    cv2.imwrite(str(still), image)
    cmd = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
        "-loop", "1", "-framerate", str(fps), "-i", str(still),
        "-t", str(seconds), "-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-g", str(fps), "-threads", "1", str(path),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return path


class PipelineProcess:
    """``python -m crowdwatch run CONFIG`` in its own session, logs to files under ``log_dir``; use it
    through :func:`running_pipeline`, which starts it and always stops it.

    ``command`` replaces ``python -m crowdwatch run`` (the config path and ``args`` follow it). The
    process gets ``REPO`` on ``PYTHONPATH``, no ``NOTIFY_SOCKET``, and ``OMP_NUM_THREADS=omp_threads``
    unless ``env`` sets it (None: left unset, for benchmarks that measure the default).
    """

    def __init__(
        self,
        config: Path,
        log_dir: Path,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        command: tuple[str, ...] = RUN,
        omp_threads: int | None = 1,
    ) -> None:
        self.config = config
        self.command = command
        self.stdout_path = log_dir / "pipeline.stdout"
        self.stderr_path = log_dir / "pipeline.stderr"
        self.env = dict(os.environ if env is None else env)
        self.env["PYTHONPATH"] = str(REPO) + os.pathsep + self.env.get("PYTHONPATH", "")
        if omp_threads is not None:
            self.env.setdefault("OMP_NUM_THREADS", str(omp_threads))
        self.env.pop("NOTIFY_SOCKET", None)
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_url: str | None = None
        self.scraped: list[str] = []  # every /metrics text, for the secret check

    @property
    def pid(self) -> int:
        assert self.process is not None, "the pipeline was not started"
        return self.process.pid

    def start(self, ready_timeout: float = 60.0) -> PipelineProcess:
        """Start the process and wait until it serves /metrics (:class:`PipelineFailed` if it exits or
        the time runs out first; the process is then stopped)."""
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [*self.command, str(self.config), *self.args],
                stdout=out,
                stderr=err,
                cwd=REPO,
                env=self.env,
                start_new_session=True,
            )
        try:
            match = self.wait_for_log(_METRICS_LINE, ready_timeout, what="its metrics server")
        except PipelineFailed:
            self.close()
            raise
        self.metrics_url = match.group(1)
        return self

    def logs(self) -> str:
        text = ""
        for path in (self.stdout_path, self.stderr_path):
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return self.logs()[-chars:]

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        assert self.metrics_url is not None
        text = urllib.request.urlopen(f"{self.metrics_url}/metrics", timeout=5).read().decode()
        self.scraped.append(text)
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return samples

    def value(self, name: str, **labels: str) -> float | None:
        return self.scrape().get((name, frozenset(labels.items())))

    def health(self) -> tuple[int, dict[str, Any]]:
        assert self.metrics_url is not None
        try:
            reply = urllib.request.urlopen(f"{self.metrics_url}/healthz", timeout=5)
            return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def wait_for(
        self, what: str, predicate: Callable[[], bool], timeout: float, interval: float = 0.1
    ) -> float:
        """Poll ``predicate`` until true; return the seconds it took (:class:`PipelineFailed` when the
        process exits or ``timeout`` passes first)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if predicate():
                return time.monotonic() - started
            self._alive(f"waiting for {what}")
            time.sleep(interval)
        raise PipelineFailed(f"timed out after {timeout:.1f} s waiting for {what}", self.log_tail())

    def wait_for_log(
        self, pattern: str | re.Pattern[str], timeout: float, *, what: str | None = None
    ) -> re.Match[str]:
        """The first match of ``pattern`` in the log, once it is there (:class:`PipelineFailed` when the
        process exits or ``timeout`` passes first)."""
        match: re.Match[str] | None = None

        def matched() -> bool:
            nonlocal match
            match = re.search(pattern, self.logs())
            return match is not None

        self.wait_for(what or f"{getattr(pattern, 'pattern', pattern)!r} in the log", matched, timeout)
        assert match is not None
        return match

    def _alive(self, doing: str) -> None:
        assert self.process is not None, "the pipeline was not started"
        if self.process.poll() is not None:
            raise PipelineFailed(
                f"crowdwatch run (pid {self.process.pid}) exited with {self.process.returncode} while "
                f"{doing}",
                self.log_tail(),
            )

    def poll(self) -> int | None:
        """The exit code, or None while the process runs."""
        assert self.process is not None, "the pipeline was not started"
        return self.process.poll()

    def send(self, sig: int) -> None:
        """Send ``sig`` to the process (by its PID) and return at once."""
        os.kill(self.pid, sig)

    def signal(self, sig: int, timeout: float = 15.0) -> tuple[int, float]:
        """Send ``sig``; return (exit code, seconds until exit)."""
        assert self.process is not None
        started = time.monotonic()
        self.send(sig)
        rc = self.process.wait(timeout=timeout)
        return rc, time.monotonic() - started

    def final_counts(self) -> dict[str, dict[str, int]]:
        """The per-camera counts the pipeline logs as it stops."""
        match = re.search(r"final counts: (\{.*\})", self.logs())
        assert match, f"no final counts in the log:\n{self.logs()[-3000:]}"
        return json.loads(match.group(1))

    def close(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the process if it still runs, by its PID: SIGTERM (a clean stop), then SIGKILL when it
        has not exited after ``timeout`` seconds. Safe to call more than once."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextmanager
def running_pipeline(
    config: Path,
    log_dir: Path,
    *,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    command: tuple[str, ...] = RUN,
    ready_timeout: float = 60.0,
    stop_timeout: float = STOP_TIMEOUT_S,
    omp_threads: int | None = 1,
) -> Iterator[PipelineProcess]:
    """A pipeline process (:class:`PipelineProcess`) started and serving /metrics for the ``with`` block,
    and stopped by its PID on the way out, on failure too (SIGTERM, SIGKILL after ``stop_timeout``).
    Not ready within ``ready_timeout``: :class:`PipelineFailed` with the log's tail."""
    pipeline = PipelineProcess(config, log_dir, env, args, command, omp_threads)
    try:
        yield pipeline.start(ready_timeout)
    finally:
        pipeline.close(stop_timeout)
