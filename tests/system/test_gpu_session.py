"""scripts/gpu_session.sh, the one call a lent GPU machine gets, run end to end here on the CPU with tiny
settings (--dry-run): every phase runs, its figures land where the call brings them back, and the
network trained in the call comes back in parts that join into a loadable checkpoint.

The CPU stands in for the GPU here: CUDA itself cannot run on this machine, so the CUDA tests the script
runs are deselected here and the benchmarks run on the CPU. What is proved is the script's plumbing,
timing and outputs, so that a session with a GPU spends none of its minutes on a broken script.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crowdwatch.model.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_session.sh"


def test_dry_run_proves_every_phase_and_brings_the_network_back(tmp_path: Path) -> None:
    result = tmp_path / "r"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(
        [str(SCRIPT), "--dry-run", str(result)], env=env, capture_output=True, text=True, timeout=1800
    )
    log = (result / "session.log").read_text() if (result / "session.log").exists() else ""
    assert proc.returncode == 0, proc.stderr[-3000:] + log[-3000:]
    report = json.loads((result / "results.json").read_text())
    phases = {p["phase"]: p for p in report["phases"]}
    for name in ("data", "environment", "model", "pipeline", "size", "train", "export"):
        assert phases[name]["rc"] == 0, (name, log[-4000:])
    # the CUDA tests ran, and skipped here for want of a GPU (on the GPU machine they pass or fail)
    assert phases["cuda_tests"]["rc"] == 0
    junit = (result / "cuda_tests.xml").read_text()
    assert 'skipped="1"' in junit and "needs a CUDA GPU" in junit

    # the GPU figures' shape, here measured on the CPU
    assert report["environment"]["torch"]
    rows = report["model"]["rows"]
    assert [(r["size"], r["batch"]) for r in rows] == [("96x64", 1), ("96x64", 2)]
    assert all(r["network_fps"] > 0 and r["predict_fps"] > 0 for r in rows)
    assert report["pipeline"]["cameras"] == 2 and report["pipeline"]["frames_processed"] > 0

    # the training started, ran steps, and its network came back in parts with their sha256
    assert report["time_to_first_step_s"] is not None and report["time_to_first_step_s"] > 0
    assert report["train"]["steps"] >= 1
    parts = sorted((result / "train").glob("last_fp16.pt.part*"))
    assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts)
    joined = tmp_path / "last.pt"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    digest, name = (result / "train" / "last_fp16.pt.sha256").read_text().split()
    assert name == "last_fp16.pt" and hashlib.sha256(joined.read_bytes()).hexdigest() == digest
    _net, meta = load_checkpoint(joined)
    assert meta.provenance["steps"] == report["train"]["steps"]
    assert (result / "train" / "config.yaml").read_text().startswith("# ")  # sized, with its header
    assert not (result / "train" / "run").exists()  # the run's full state stays on the machine
