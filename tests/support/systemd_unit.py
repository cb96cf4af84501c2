"""The systemd unit as the live and sandbox tests run it without systemd: its ExecStart and Environment=
read from systemd/crowdwatch.service, and a bound NOTIFY_SOCKET standing in for systemd.

Every process a test starts is stopped by PID with :func:`stop_process`.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "crowdwatch.service"
INSTALLED_BINARY = "/opt/crowdwatch/venv/bin/crowdwatch"
INSTALLED_CONFIG = "/etc/crowdwatch/site.yaml"


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """Stop one process we started, by its PID; SIGCONT first in case a test left it stopped."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class NotifyListener:
    """A bound AF_UNIX datagram socket standing in for systemd; records (monotonic, message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def times(self, assignment: str) -> list[float]:
        return [t for t, m in list(self.messages) if assignment in m.splitlines()]

    def wait_for(self, assignment: str, timeout: float, after: float = 0.0) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [t for t in self.times(assignment) if t > after]
            if hits:
                return hits[0]
            time.sleep(0.1)
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def unit_command(config: Path) -> list[str]:
    """The unit's ExecStart with the install paths swapped for this checkout and the test config."""
    line = next(text for text in UNIT.read_text().splitlines() if text.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    assert argv[0] == INSTALLED_BINARY and INSTALLED_CONFIG in argv
    rest = [str(config) if arg == INSTALLED_CONFIG else arg for arg in argv[1:]]
    return [sys.executable, "-m", "crowdwatch", *rest]


def reload_command(pid: int) -> list[str]:
    """The unit's ExecReload with ``$MAINPID`` as systemd expands it (what ``systemctl reload`` runs)."""
    line = next(text for text in UNIT.read_text().splitlines() if text.startswith("ExecReload="))
    return [str(pid) if arg == "$MAINPID" else arg for arg in shlex.split(line.removeprefix("ExecReload="))]


def unit_environment(state: Path, cache: Path) -> dict[str, str]:
    """The unit's Environment= assignments, with %S and %C as systemd expands them for a system unit."""
    env = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            for item in shlex.split(line.removeprefix("Environment=")):
                key, _, value = item.partition("=")
                env[key] = value.replace("%S", str(state)).replace("%C", str(cache))
    return env
