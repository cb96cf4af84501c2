"""Would the unit's sandbox let the real pipeline work? Traced with strace, since systemd cannot run here.

`crowdwatch run` (the unit's ExecStart, reading a real RTSP camera on the CPU) runs under `strace -f`
until frames flow, then stops on SIGTERM. Every system call it made must pass the unit's
SystemCallFilter= (expanded by systemd-analyze itself), every socket must be of a family in
RestrictAddressFamilies=, and every file it created, wrote, renamed or removed must lie where the
unit allows writes under ProtectSystem=strict (its state and cache directories, the private /tmp, /dev).
This covers the CPU path only; the CUDA driver's calls are not traced here.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from support.rtsp_fixtures import RtspServer
from support.systemd_unit import REPO, UNIT, NotifyListener, stop_process, unit_command, unit_environment

pytestmark = [
    pytest.mark.rtsp,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed"),
    pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"),
]


def _unit_values(key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith(key + "=")]


@functools.cache
def _expand(name: str) -> frozenset[str]:
    """A syscall group (@system-service) as system call names, per systemd-analyze; a name as itself."""
    if not name.startswith("@"):
        return frozenset({name})
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    members = [s.strip() for s in out.splitlines()[1:] if s.strip() and not s.strip().startswith("#")]
    return frozenset().union(*(_expand(m) for m in members))


def allowed_syscalls() -> set[str]:
    """The unit's SystemCallFilter=: the first (allow) list, minus every later ~ (deny) list."""
    allowed: set[str] = set()
    for value in _unit_values("SystemCallFilter"):
        deny = value.startswith("~")
        names = set().union(*(_expand(n) for n in value.lstrip("~").split()))
        allowed = allowed - names if deny else allowed | names
    return allowed


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> dict:
    if not Path("/usr/bin/python3").exists():
        pytest.skip("GStreamer RTSP server needs /usr/bin/python3")
    tmp = tmp_path_factory.mktemp("sandbox")
    probe = subprocess.run(["strace", "-qq", "-o", os.devnull, "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here: {probe.stderr.decode().strip()}")
    state, cache = tmp / "state", tmp / "cache"
    procs: list[subprocess.Popen] = []
    listener = NotifyListener(tmp / "notify.sock")
    rtsp = RtspServer({"/live": "pattern:160x120@10"})
    try:
        rtsp.start()
        port = rtsp.port
        config = tmp / "site.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "model": {"device": "cpu", "threads": 1, "max_batch": 2},
                    "defaults": {"fps": 5, "open_timeout_s": 2, "read_timeout_s": 1},
                    "cameras": [
                        {
                            "id": "lobby",
                            "url": f"rtsp://127.0.0.1:{port}/live",
                            "zones": [{"id": "door", "polygon": [[0, 0], [80, 0], [80, 120]]}],
                        }
                    ],
                    # StateDirectory=crowdwatch is %S/crowdwatch; the config's output.dir points there.
                    "output": {"dir": str(state / "crowdwatch")},
                    "metrics": {"address": "127.0.0.1", "port": 0},
                }
            )
        )
        for path in (state / "crowdwatch", cache / "crowdwatch"):  # systemd creates these before start
            path.mkdir(parents=True)
        env = {
            **os.environ,
            **unit_environment(state, cache),
            "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1",
            "NOTIFY_SOCKET": str(listener.path),
            "WATCHDOG_USEC": "1000000",
        }
        log = (tmp / "crowdwatch.log").open("w")
        strace = ["strace", "-f", "-qq", "-o", str(tmp / "trace.txt")]
        traced = subprocess.Popen(
            [*strace, *unit_command(config)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd="/"
        )
        procs.append(traced)

        def log_tail() -> str:
            return (tmp / "crowdwatch.log").read_text()[-2000:]

        assert listener.wait_for("READY=1", timeout=180) is not None, log_tail()
        ready = next(m for _, m in listener.messages if "READY=1" in m.splitlines())
        main_pid = int(re.search(r"^MAINPID=(\d+)$", ready, re.M).group(1))
        # WATCHDOG=1 only comes once frames are processed: wait for a few.
        deadline = time.monotonic() + 60
        while len(listener.times("WATCHDOG=1")) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(listener.times("WATCHDOG=1")) >= 4, "no frames processed under strace"
        os.kill(main_pid, signal.SIGTERM)
        assert traced.wait(30) == 0, log_tail()
        yield {"lines": (tmp / "trace.txt").read_text().splitlines(), "state": state, "cache": cache}
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        rtsp.stop()
        listener.close()


def test_every_system_call_passes_the_units_filter(trace):
    used = {m.group(1) for line in trace["lines"] if (m := re.match(r"^\d+\s+([a-z0-9_]+)\(", line))}
    assert len(used) > 20  # the trace is real
    assert sorted(used - allowed_syscalls()) == []


def test_sockets_stay_in_the_allowed_families(trace):
    pattern = re.compile(r"^\d+\s+socket\((AF_[A-Z0-9]+),")
    families = {m.group(1) for line in trace["lines"] if (m := pattern.match(line))}
    (allowed,) = _unit_values("RestrictAddressFamilies")
    assert "AF_INET" in families and families <= set(allowed.split())


_WRITES = re.compile(
    r'^\d+\s+(?:openat\(\w+, "(?P<open>[^"]+)", [^)]*O_(?:WRONLY|RDWR|CREAT)'
    r'|(?:mkdir|mkdirat|unlink|unlinkat|rename|renameat2?)\((?:\w+, )?"(?P<path>[^"]+)")'
)


def test_files_are_written_only_where_protectsystem_strict_allows(trace):
    writable = (f"{trace['state']}/crowdwatch/", f"{trace['cache']}/crowdwatch/", "/tmp/", "/dev/")
    written = set()
    for line in trace["lines"]:
        match = _WRITES.match(line)
        failed = line.rstrip().endswith(("ENOENT (No such file or directory)", "EEXIST (File exists)"))
        if match and not failed:
            written.add(match.group("open") or match.group("path"))
    assert any(p.startswith(writable[0]) for p in written)  # the CSV and snapshots are seen
    # A relative path would land in / (the unit's working directory), which is read-only.
    assert sorted(p for p in written if not (p + "/").startswith(writable)) == []
