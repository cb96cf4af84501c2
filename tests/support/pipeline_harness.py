"""Helpers for the end-to-end pipeline tests: run ``python -m crowdwatch run`` as a real subprocess and
read its real outputs (CSV from disk, /metrics over HTTP, logs). No tests live here.

Every process started here is stopped by PID (``PipelineProcess.close`` in a ``finally``).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
_METRICS_LINE = re.compile(r"serving /metrics and /healthz on (http://[\d.]+:\d+)")


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
    """``python -m crowdwatch run CONFIG`` in its own session, logs to files under ``log_dir``.

    ``command`` replaces ``python -m crowdwatch run`` (the config path and ``args`` follow it).
    """

    def __init__(
        self,
        config: Path,
        log_dir: Path,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        command: tuple[str, ...] = (sys.executable, "-m", "crowdwatch", "run"),
    ) -> None:
        self.config = config
        self.command = command
        self.stdout_path = log_dir / "pipeline.stdout"
        self.stderr_path = log_dir / "pipeline.stderr"
        self.env = dict(os.environ if env is None else env)
        self.env["PYTHONPATH"] = str(REPO) + os.pathsep + self.env.get("PYTHONPATH", "")
        self.env.setdefault("OMP_NUM_THREADS", "1")
        self.env.pop("NOTIFY_SOCKET", None)
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_url: str | None = None
        self.scraped: list[str] = []  # every /metrics text, for the secret check

    def start(self, ready_timeout: float = 60.0) -> PipelineProcess:
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [*self.command, str(self.config), *self.args],
                stdout=out,
                stderr=err,
                cwd=REPO,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            match = _METRICS_LINE.search(self.logs())
            if match:
                self.metrics_url = match.group(1)
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"pipeline exited with {self.process.returncode}:\n{self.logs()}")
            time.sleep(0.1)
        raise AssertionError(f"pipeline did not start its metrics server:\n{self.logs()}")

    def logs(self) -> str:
        text = ""
        for path in (self.stdout_path, self.stderr_path):
            if path.exists():
                text += path.read_text(errors="replace")
        return text

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
        """Poll ``predicate`` until true; return the seconds it took (AssertionError on timeout)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if predicate():
                return time.monotonic() - started
            assert self.process is not None and self.process.poll() is None, f"pipeline died:\n{self.logs()}"
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}\n{self.logs()[-4000:]}")

    def signal(self, sig: int, timeout: float = 15.0) -> tuple[int, float]:
        """Send ``sig``; return (exit code, seconds until exit)."""
        assert self.process is not None
        started = time.monotonic()
        os.kill(self.process.pid, sig)
        rc = self.process.wait(timeout=timeout)
        return rc, time.monotonic() - started

    def final_counts(self) -> dict[str, dict[str, int]]:
        """The per-camera counts the pipeline logs as it stops."""
        match = re.search(r"final counts: (\{.*\})", self.logs())
        assert match, f"no final counts in the log:\n{self.logs()[-3000:]}"
        return json.loads(match.group(1))

    def close(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
