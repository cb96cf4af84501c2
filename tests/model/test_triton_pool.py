"""backend triton against a real Triton pool (``crowdwatch serve --backend openvino``, PyTriton's
tritonserver on 127.0.0.1): counts equal the local backend's, the client needs no torch, and a late
pool is a fault with a deadline, a back-off and one log line per streak.

The pool serves the packaged weights exported to OpenVINO IR; the local reference runs the same IR on
the openvino backend, both at fp32, so the two differ only in where the network runs (and in batch
composition: a count may differ only where a score lies within ``SCORE_MARGIN`` of the threshold).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.exported_models import exported
from support.mosquitto import make_tls_files
from support.triton_pool import REPO, TritonPool, count_band, pool_missing

from crowdwatch.demo import render_frames
from crowdwatch.errors import InferenceUnavailable
from crowdwatch.model.predictor import Predictor
from crowdwatch.model.triton import TritonBackend, TritonTarget

__all__ = ["exported"]  # the session fixture, imported so pytest finds it here

pytest.importorskip("tritonclient.grpc", reason="needs the crowdwatch[triton] extra (tritonclient[grpc])")


@pytest.fixture(scope="module")
def pool(exported: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonPool]:
    reason = pool_missing()
    if reason:
        pytest.skip(reason)
    server = TritonPool(exported["xml"], tmp_path_factory.mktemp("pool")).start()
    try:
        yield server
    finally:
        server.stop()


def frames() -> list[np.ndarray]:
    """Two crowd frames of one size (one batch, one request) and one of another size."""
    same = render_frames(320, 240, 2, 30, seed=5)
    other = render_frames(256, 192, 1, 20, seed=6)[0]
    return [*same, other]


def test_counts_through_the_pool_equal_the_local_backend(pool: TritonPool, exported: dict[str, Path]) -> None:
    local = Predictor.from_checkpoint(exported["xml"], backend="openvino", precision="fp32")
    remote = Predictor.from_checkpoint(None, backend="triton", triton=TritonTarget(pool.url, timeout_s=60))
    assert (remote.backend.name, remote.threshold, remote.meta) == ("triton", local.threshold, local.meta)
    images = frames()
    before = pool.metrics()
    got = remote.predict(images[:2]) + remote.predict(images[2:])
    after = pool.metrics()
    want = local.predict(images[:2]) + local.predict(images[2:])
    bands = count_band(local, images[:2]) + count_band(local, images[2:])
    assert all(mine.count in band for mine, band in zip(got, bands, strict=True)), (got, bands)
    assert sum(p.count for p in got) > 0  # trained weights find the drawn people
    for mine, theirs, band in zip(got, want, bands, strict=True):
        if len(band) == 1:  # no score near the threshold: the same points, up to the last float bits
            np.testing.assert_allclose(mine.points, theirs.points, atol=1e-2)
    # One batch of two frames is one request: two requests (3 frames) in all, each one execution.
    delta = {name: after[name] - before.get(name, 0.0) for name in after}
    assert delta["nv_inference_request_success"] == 2 and delta["nv_inference_count"] == 3
    assert delta["nv_inference_exec_count"] == 2


@pytest.mark.data
def test_real_frames_count_the_same_through_the_pool(
    pool: TritonPool, exported: dict[str, Path], shared_data: Path
) -> None:
    paths = sorted((shared_data / "mall" / "train").glob("*.jpg"))[:3]
    images = [cv2.imread(str(path)) for path in paths]
    local = Predictor.from_checkpoint(exported["xml"], backend="openvino", precision="fp32")
    remote = Predictor.from_checkpoint(None, backend="triton", triton=TritonTarget(pool.url, timeout_s=60))
    counts = [p.count for p in remote.predict(images)]
    bands = count_band(local, images)
    assert all(count in band for count, band in zip(counts, bands, strict=True)), (counts, bands)


CLIENT = """
import json, sys
import numpy as np
sys.modules["torch"] = None  # any import of torch now fails
from crowdwatch.model.triton import TritonBackend, TritonTarget
backend = TritonBackend(TritonTarget(sys.argv[1], timeout_s=60))
out = backend(np.load(sys.argv[2]))
np.save(sys.argv[3], out["logits"])
report = {"torch": "torch" in sys.modules and sys.modules["torch"] is not None}
report["meta_n"] = backend.metadata["arch"]["num_candidates"]
report["kind"] = type(out["logits"]).__name__
print(json.dumps(report))
"""


def test_the_client_runs_without_torch(pool: TritonPool, exported: dict[str, Path], tmp_path: Path) -> None:
    from crowdwatch.model.backends import OpenVINOBackend

    batch = np.random.default_rng(0).standard_normal((2, 3, 64, 96)).astype(np.float32)
    np.save(tmp_path / "batch.npy", batch)
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT, pool.url, str(tmp_path / "batch.npy"), str(tmp_path / "logits.npy")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"torch": False, "meta_n": 4, "kind": "ndarray"}
    want = OpenVINOBackend(exported["xml"], precision="fp32")(batch)["logits"]  # the pool's precision
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), want, atol=1e-4)


def test_a_late_pool_is_a_fault_with_deadline_back_off_and_one_log_line(
    pool: TritonPool, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    target = TritonTarget(pool.url, timeout_s=60, retry_initial_s=5, retry_max_s=20)
    backend = TritonBackend(target, clock=lambda: now[0])
    batch = np.zeros((1, 3, 64, 64), np.float32)
    assert backend(batch)["points"].shape == (1, backend.metadata["arch"]["num_candidates"] * 8 * 8, 2)
    late = dataclasses.replace(target, timeout_s=1e-4)  # no pool answers within 0.1 ms
    caplog.set_level(logging.INFO, logger="crowdwatch.model.triton")

    backend.target = late
    with pytest.raises(InferenceUnavailable) as info:
        backend(batch)
    assert "no answer within 0.0001 s (model.timeout_s)" in info.value.reason
    assert backend.fault() == info.value.reason
    # While backing off, batches fail at once, without asking the pool, even if it would answer now.
    backend.target = target
    now[0] += 4.9
    with pytest.raises(InferenceUnavailable):
        backend(batch)
    # The next try (after 5 s) is late again: the wait doubles, and nothing more is logged.
    backend.target = late
    now[0] += 0.2
    with pytest.raises(InferenceUnavailable):
        backend(batch)
    backend.target = target
    now[0] += 9.9
    with pytest.raises(InferenceUnavailable):  # 10 s after the second failure: still backing off
        backend(batch)
    now[0] += 0.2
    assert backend(batch)["logits"].shape[0] == 1  # the pool answers: recovered
    assert backend.fault() is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "retrying with back-off" in warnings[0]
    assert any("is back after 15.2 s (4 batches dropped meanwhile)" in r.getMessage() for r in caplog.records)


@pytest.mark.slow  # a second pool, with TLS (~20-40 s on a loaded 2-core machine)
def test_a_mutual_tls_pool_serves_only_boxes_with_a_certificate_from_its_ca(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    reason = pool_missing()
    if reason:
        pytest.skip(reason)
    pki = make_tls_files(tmp_path / "pki")  # a throwaway CA and a server certificate for 127.0.0.1
    box_cert, box_key, csr = tmp_path / "box.pem", tmp_path / "box.key", tmp_path / "box.csr"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (
        ["openssl", "req", *ec, "-keyout", box_key, "-out", csr, "-subj", "/CN=box-a"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", pki.ca, "-CAkey", pki.ca.with_suffix(".key"),
         "-CAcreateserial", "-out", box_cert, "-days", "2"],
    ):  # fmt: skip
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True, timeout=30)
    tls = ("--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--tls-client-ca", str(pki.ca))
    server = TritonPool(exported["xml"], tmp_path, extra=tls).start()
    try:
        secure = f"grpcs://127.0.0.1:{server.grpc_port}"
        backend = TritonBackend(TritonTarget(secure, timeout_s=60, ca=pki.ca, cert=box_cert, key=box_key))
        assert backend(np.zeros((1, 3, 64, 64), np.float32))["logits"].shape == (1, 256)
        for target in (
            TritonTarget(secure, timeout_s=10, ca=pki.ca),  # no certificate of its own
            TritonTarget(f"grpc://127.0.0.1:{server.grpc_port}", timeout_s=10),  # no TLS at all
        ):
            with pytest.raises(InferenceUnavailable):
                TritonBackend(target)
    finally:
        server.stop()
