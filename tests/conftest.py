"""Shared fixtures: where the crowd data is, small model builders, and marker-driven skips."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Fixtures that many folders use, registered once: a test names them as arguments, with no import.
pytest_plugins = ["support.capture_fakes", "support.rtsp_fixtures"]

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CROWDWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))

# `scripts/bootstrap.sh test-date-shift` sets this: the wall clock (time.time, time.time_ns) runs this many
# days ahead for the whole session, so a test that only passes on the day it was written fails in CI
# that day. (libfaketime was tried first: it breaks time.sleep under Python 3.11 with EINVAL.)
_SHIFT_DAYS = float(os.environ.get("CROWDWATCH_TEST_CLOCK_SHIFT_DAYS", "0") or 0)
if _SHIFT_DAYS:
    import time

    _real_time, _real_time_ns = time.time, time.time_ns
    _shift_s = _SHIFT_DAYS * 86400
    time.time = lambda: _real_time() + _shift_s
    time.time_ns = lambda: _real_time_ns() + int(_shift_s * 1e9)

# Two cores shared by the test process and the subprocesses it starts: one thread each keeps
# them from fighting.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    no_cuda = pytest.mark.skip(reason="needs a CUDA GPU; none on this machine")
    no_data = pytest.mark.skip(reason=f"needs the crowd data, not found at {SHARED_DATA}")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_cuda)
        if "data" in item.keywords and not SHARED_DATA.is_dir():
            item.add_marker(no_data)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the test, and the count as it was afterwards (a Trainer sets its own)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the crowd data, not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for `python -m crowdwatch` subprocesses: this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A fresh 256 kB tmpfs for full-disk tests (skips where mounting needs a root this run lacks)."""
    from support.small_disk import mounted_small_disk

    yield from mounted_small_disk()
