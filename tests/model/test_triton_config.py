"""backend triton without a server: the config keys, the exported model repository (parsed with the real
protobuf schema that tritonclient ships), the model-config checks, and a pool that is not there."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from support.exported_models import needs_extra
from support.ports import free_port

from crowdwatch.config import load_config
from crowdwatch.config.loader import ConfigError
from crowdwatch.errors import InferenceUnavailable, UsageError
from crowdwatch.model import backends
from crowdwatch.model.triton import (
    INPUT_NAME,
    METADATA_PARAMETER,
    OUTPUT_NAMES,
    TritonTarget,
    check_model_config,
)

pytest.importorskip("tritonclient.grpc", reason="needs the crowdwatch[triton] extra (tritonclient[grpc])")


def write(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(f"model:\n{model}cameras:\n  - {{id: cam, url: rtsp://127.0.0.1:9/x}}\n")
    return path


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        ("  backend: triton\n", "backend triton needs url"),
        ("  backend: triton\n  url: http://pool:8001\n", "expected grpc://HOST:PORT"),
        ("  backend: triton\n  url: grpc://pool:8001\n  weights: default\n", "leave weights out"),
        ("  backend: torch\n  url: grpc://pool:8001\n", "url: only with backend triton"),
        ("  backend: triton\n  url: grpc://pool:8001\n  tls: {ca: ca.pem}\n", "tls is for a grpcs:// url"),
        ("  backend: triton\n  url: grpcs://pool:8001\n  tls: {cert: c.pem}\n", "cert and key go together"),
        ("  backend: triton\n  url: grpc://pool:8001\n  timeout_s: 0\n", "model.timeout_s"),
    ],
)
def test_bad_pool_settings_are_config_errors(tmp_path: Path, model: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, model))
    assert problem in str(info.value)


def test_a_pool_config_loads_with_its_tls_files_resolved(tmp_path: Path) -> None:
    model = (
        "  backend: triton\n  url: grpcs://pool.example:8001\n  tls: {ca: ca.pem, cert: c.pem, key: k.pem}\n"
    )
    config = load_config(write(tmp_path, model))
    assert config.model.url == "grpcs://pool.example:8001" and config.model.name == "p2pnet"
    assert config.model.tls is not None and config.model.tls.ca == tmp_path / "ca.pem"
    target = TritonTarget(config.model.url)
    assert (target.address, target.tls) == ("pool.example:8001", True)


def test_the_client_speaks_the_exported_graph_s_names() -> None:
    assert (INPUT_NAME, OUTPUT_NAMES) == (backends.INPUT_NAME, backends.OUTPUT_NAMES)


def test_a_pool_that_is_not_there_is_unavailable_not_a_crash() -> None:
    from crowdwatch.model.triton import TritonBackend

    url = f"grpc://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(InferenceUnavailable) as info:
        TritonBackend(TritonTarget(url, timeout_s=2.0))
    assert url in info.value.reason and "unavailable" in info.value.reason


def test_count_names_the_missing_url_and_a_url_without_triton(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    assert cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    for argv, said in (
        (["--backend", "triton"], "--backend triton needs --url"),
        (["--url", "grpc://127.0.0.1:1"], "--url is for --backend triton"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "crowdwatch", "count", str(image), *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2 and said in proc.stderr, proc.stderr


def repository_config(tmp_path: Path, *extra: str) -> tuple[Any, Path]:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    out = tmp_path / "repo"
    proc = subprocess.run(
        [sys.executable, "-m", "crowdwatch", "export", "--format", "triton", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    text = (out / "p2pnet" / "config.pbtxt").read_text()
    return text_format.Parse(text, model_config_pb2.ModelConfig()), out


@needs_extra
def test_export_triton_writes_a_repository_triton_s_schema_accepts(tmp_path: Path) -> None:
    from google.protobuf.json_format import MessageToDict
    from tritonclient.grpc import model_config_pb2

    from crowdwatch.model.checkpoint import load_checkpoint, packaged_weights, parse_meta

    config, out = repository_config(tmp_path, "--kind", "gpu", "--instances", "2", "--tensorrt")
    assert config.name == "p2pnet" and config.backend == "onnxruntime" and config.max_batch_size == 8
    assert [(t.name, list(t.dims), t.data_type) for t in config.input] == [
        ("images", [3, -1, -1], model_config_pb2.TYPE_FP32)
    ]
    assert [(t.name, list(t.dims)) for t in config.output] == [("logits", [-1]), ("points", [-1, 2])]
    assert config.HasField("dynamic_batching") and config.dynamic_batching.max_queue_delay_microseconds > 0
    assert list(config.dynamic_batching.preferred_batch_size) == []  # the largest batch within the delay
    (group,) = config.instance_group
    assert group.count == 2 and group.kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    # The metadata a box reads: the packaged checkpoint's own, through the same check the box runs.
    as_served = MessageToDict(config, preserving_proto_field_name=True)
    metadata = check_model_config("repo", as_served)
    weights = packaged_weights()
    assert weights is not None
    assert parse_meta(weights, metadata, weights_key=None) == load_checkpoint(weights)[1]
    onnx_file = out / "p2pnet" / "1" / "model.onnx"
    assert onnx_file.stat().st_size > 1_000_000
    assert sorted(p.name for p in out.iterdir()) == ["p2pnet"]  # no temporary files left behind


def test_model_configs_that_do_not_fit_are_refused_with_the_reason() -> None:
    good: dict[str, Any] = {
        "max_batch_size": 8,
        "input": [{"name": "images", "data_type": "TYPE_FP32", "dims": ["3", "-1", "-1"]}],
        "output": [{"name": "logits"}, {"name": "points"}],
        "parameters": {METADATA_PARAMETER: {"string_value": json.dumps({"arch": {}})}},
    }
    assert check_model_config("pool", good) == {"arch": {}}
    cases = [
        ({"max_batch_size": 0}, "max_batch_size is 0"),
        ({"input": [{"name": "x", "data_type": "TYPE_FP32", "dims": ["3"]}]}, "expected one input 'images'"),
        ({"input": [{"name": "images", "data_type": "TYPE_FP16", "dims": ["3"]}]}, "must be TYPE_FP32"),
        ({"output": [{"name": "logits"}]}, "output 'points' is missing"),
        ({"parameters": {}}, "parameters['crowdwatch'] is missing"),
        ({"parameters": {METADATA_PARAMETER: {"string_value": "{"}}}, "is not JSON"),
    ]
    for change, said in cases:
        with pytest.raises(UsageError) as info:
            check_model_config("pool", {**good, **change})
        assert said in str(info.value) and str(info.value).startswith("pool: ")


def test_check_config_names_the_pool_and_asks_for_no_weights_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crowdwatch.commands.check_config import main

    config = write(tmp_path, "  backend: triton\n  url: grpc://pool.example:8001\n  name: p2pnet-b\n")
    assert main([str(config)]) == 0
    assert (
        "model: p2pnet-b on the inference pool grpc://pool.example:8001 (triton)" in capsys.readouterr().out
    )


def test_a_box_started_while_the_pool_is_away_waits_and_stops_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    from crowdwatch.pipeline import Pipeline

    url = f"grpc://127.0.0.1:{free_port()}"  # nothing listens there
    model = f"  backend: triton\n  url: {url}\n  retry_initial_s: 0.1\n  retry_max_s: 0.2\n"
    path = write(tmp_path, model)
    path.write_text(path.read_text() + "metrics: {port: 0}\noutput: {dir: out}\n")
    config = load_config(path)
    pipeline = Pipeline(config)
    caplog.set_level(logging.INFO)
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(pipeline.run()))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while (
            sum("waiting for it" in r.getMessage() for r in caplog.records) == 0
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        time.sleep(1.0)  # several tries (0.1 s, then 0.2 s apart): still one line
    finally:
        pipeline.request_stop()
        runner.join(timeout=30)
    assert result == [0]
    waits = [r.getMessage() for r in caplog.records if "waiting for it" in r.getMessage()]
    assert len(waits) == 1 and url in waits[0]
    assert any("stopped cleanly before the inference pool answered" in r.getMessage() for r in caplog.records)


def test_a_tls_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    from crowdwatch.model.triton import TritonBackend

    missing = tmp_path / "pool-ca.pem"
    with pytest.raises(UsageError) as info:
        TritonBackend(TritonTarget(f"grpcs://127.0.0.1:{free_port()}", ca=missing))
    assert f"triton tls: cannot read {missing}: No such file or directory" in str(info.value)
