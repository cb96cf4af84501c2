"""crowdwatch serve without starting a server: which Python its Triton stub can run, and the refusals
that keep the pool on loopback unless only certificate holders can reach it."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from crowdwatch.inference.triton_server import stub_python_problem

SONAME = str(sysconfig.get_config_var("INSTSONAME"))
LIBDIR = Path(str(sysconfig.get_config_var("LIBDIR")))
shared = pytest.mark.skipif(
    not (SONAME.endswith(".so.1.0") and (LIBDIR / SONAME).exists()),
    reason=f"{sys.executable} is built without a shared libpython",
)


@shared
def test_the_stub_runs_this_python_when_the_loader_finds_its_own_libpython() -> None:
    assert stub_python_problem(ld_library_path=str(LIBDIR)) is None
    cache = f"\t{SONAME} (libc6,x86-64) => {LIBDIR / SONAME}\n"
    assert stub_python_problem(ld_library_path="", ld_cache=lambda: cache) is None


@shared
def test_another_libpython_first_in_the_loader_s_path_is_named(tmp_path: Path) -> None:
    other = tmp_path / SONAME
    other.write_bytes(b"")  # another build of the same soname (Debian's, under a pyenv Python)
    problem = stub_python_problem(ld_library_path=str(tmp_path))
    assert problem is not None
    assert f"would load {other}" in problem and str(LIBDIR) in problem and "/usr/bin/python3" in problem
    problem = stub_python_problem(ld_library_path="", ld_cache=lambda: f"\t{SONAME} (x86-64) => {other}\n")
    assert problem is not None and f"would load {other}" in problem
    problem = stub_python_problem(ld_library_path="", ld_cache=lambda: "")
    assert problem is not None and f"has no {SONAME}" in problem


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--address", "0.0.0.0"], "--tls-client-ca"),
        (["--address", "192.0.2.1", "--tls-cert", "c.pem", "--tls-key", "k.pem"], "--tls-client-ca"),
        (["--metrics-address", "0.0.0.0"], "must be a loopback address"),
        (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--port", "0"], "--port must be a port number"),
    ],
)
def test_serve_refuses_to_be_reachable_without_certificates(argv: list[str], said: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "crowdwatch", "serve", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and said in proc.stderr, proc.stderr


def test_the_pool_s_torch_model_carries_the_checkpoint_s_metadata() -> None:
    import numpy as np

    from crowdwatch.inference.triton_server import PoolModel
    from crowdwatch.model.checkpoint import load_checkpoint, packaged_weights, parse_meta

    weights = packaged_weights()
    if weights is None:
        pytest.skip("this checkout ships no packaged weights")
    model = PoolModel("default", backend="torch", precision="fp32")
    assert parse_meta(weights, model.metadata, weights_key=None) == load_checkpoint(weights)[1]
    out = model(np.zeros((2, 3, 64, 96), np.float32))
    m = load_checkpoint(weights)[1].num_candidates * (64 // 8) * (96 // 8)
    assert out["logits"].shape == (2, m) and out["points"].shape == (2, m, 2)
    assert out["logits"].dtype == np.float32 and np.isfinite(out["points"]).all()
