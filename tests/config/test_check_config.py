"""`crowdwatch check-config`: bad configs rejected with their key path (exit 2), a masked summary for a
valid one (exit 0), the shipped example configs valid, and a secret never echoed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.config_files import write_config

REPO = Path(__file__).resolve().parents[2]
SECRET = "Pa55-w0rd-Zebra"

GOOD = """
cameras:
  - id: front
    url: rtsp://127.0.0.1:8554/front
"""

# (name, yaml, key path the message must name, fragment saying what was expected)
BAD_CONFIGS = [
    ("unknown-section", "camras: []\n" + GOOD, "camras", "unknown key"),
    ("no-cameras", "metrics: {port: 9000}\n", "cameras", "required"),
    ("empty-camera-list", "cameras: []\n", "cameras", "at least 1"),
    ("camera-id-not-a-slug", "cameras:\n  - {id: Front Door, url: a.mp4}\n", "cameras[0].id", "slug"),
    (
        "duplicate-camera-id",
        "cameras:\n  - {id: a, url: a.mp4}\n  - {id: a, url: b.mp4}\n",
        "cameras[1].id",
        "duplicate camera id",
    ),
    (
        "polygon-two-points",
        "cameras:\n  - id: a\n    url: a.mp4\n    zones:\n      - {id: z, polygon: [[0, 0], [5, 5]]}\n",
        "cameras[0].zones[0].polygon",
        "at least 3",
    ),
    (
        "polygon-point-three-coords",
        "cameras:\n  - id: a\n    url: a.mp4\n    zones:\n"
        "      - {id: z, polygon: [[0, 0], [5, 5, 1], [0, 5]]}\n",
        "cameras[0].zones[0].polygon[1]",
        "at most 2",
    ),
    (
        "alert-high-not-above-low",
        "cameras:\n  - id: a\n    url: a.mp4\n    zones:\n"
        "      - id: z\n        polygon: [[0, 0], [9, 0], [9, 9]]\n"
        "        alert: {high: 3, low: 3}\n",
        "cameras[0].zones[0].alert.low",
        "greater than low",
    ),
    ("negative-default-fps", "defaults: {fps: -2}\n" + GOOD, "defaults.fps", "greater than 0"),
    (
        "reconnect-cap-below-initial",
        "defaults:\n  reconnect: {initial_s: 10, max_s: 2}\n" + GOOD,
        "defaults.reconnect",
        "max_s",
    ),
    (
        "unknown-reconnect-key-in-camera",
        "cameras:\n  - {id: a, url: a.mp4, reconnect: {maxs: 3}}\n",
        "cameras[0].reconnect.maxs",
        "unknown key",
    ),
    (
        "bad-transport-override",
        "cameras:\n  - {id: a, url: 'rtsp://h/x', rtsp_transport: quic}\n",
        "cameras[0].rtsp_transport",
        "'tcp' or 'udp'",
    ),
    ("unsupported-url-scheme", "cameras:\n  - {id: a, url: 'ftp://h/x.mp4'}\n", "cameras[0].url", "rtsp://"),
    ("url-a-list", "cameras:\n  - {id: a, url: [1, 2]}\n", "cameras[0].url", "device index"),
    ("metrics-port-too-big", "metrics: {port: 70000}\n" + GOOD, "metrics.port", "65535"),
    ("metrics-address-not-ip", "metrics: {address: example.com}\n" + GOOD, "metrics.address", "IP address"),
    ("precision-unknown", "model: {precision: fp8}\n" + GOOD, "model.precision", "'fp16'"),
    ("device-unknown", "model: {device: gpu}\n" + GOOD, "model.device", "cuda:N"),
    (
        "csv-flush-zero",
        "output: {csv: {flush_interval_s: 0}}\n" + GOOD,
        "output.csv.flush_interval_s",
        "greater than 0",
    ),
    (
        "missing-env-secret",
        "cameras:\n  - {id: a, url: 'rtsp://u:${env:CW_TEST_UNSET_VAR}@h/x'}\n",
        "cameras[0].url",
        "CW_TEST_UNSET_VAR",
    ),
    ("yaml-syntax", "cameras:\n  - id: a\n   url: [\n", "line 3", "YAML syntax error"),
    (
        "yaml-duplicate-key",
        "cameras:\n  - id: a\n    id: b\n    url: a.mp4\n",
        "line 3",
        "duplicate key 'id'",
    ),
    ("empty-file", "", "", "empty"),
]


def check_config(path: Path, cli_env: dict[str, str], python: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "crowdwatch", "check-config", str(path)],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=REPO,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("name", "text", "key", "expected"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_check_config_rejects_bad_config_naming_the_key(
    name: str, text: str, key: str, expected: str, tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    cli_env.pop("CW_TEST_UNSET_VAR", None)
    result = check_config(write_config(tmp_path, text), cli_env, python)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
    if key.startswith("line ") or not key:  # a whole-file (YAML) error: the position is in the message
        wanted = [line for line in error_lines if line.startswith("<top level>:") and key in line]
    else:
        wanted = [line for line in error_lines if line.startswith(f"{key}:")]
    assert wanted and any(expected in line for line in wanted), result.stderr


def test_valid_config_exit_0_with_a_masked_summary(
    tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    cli_env["CW_CAM_PASSWORD"] = SECRET
    path = write_config(
        tmp_path,
        """
        cameras:
          - id: front
            url: rtsp://admin:${env:CW_CAM_PASSWORD}@127.0.0.1:8554/front
          - id: usb
            url: 0
        """,
    )
    result = check_config(path, cli_env, python)
    assert result.returncode == 0, result.stderr
    assert "front: stream rtsp://***@127.0.0.1:8554/front" in result.stdout
    assert "usb: device 0" in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_example_configs_are_valid(tmp_path: Path, cli_env: dict[str, str], python: str) -> None:
    assert check_config(REPO / "configs" / "demo.yaml", cli_env, python).returncode == 0
    cli_env["HALL_CAMERA_HOST"] = "192.0.2.11"
    cli_env.pop("CREDENTIALS_DIRECTORY", None)
    result = check_config(REPO / "configs" / "site.yaml", cli_env, python)
    # site.yaml references a systemd credential on purpose: without one it must say which, by key path
    assert result.returncode == 2
    assert "cameras[0].url: credential camera_entrance is referenced" in result.stderr
    (tmp_path / "camera_entrance").write_text(SECRET + "\n", encoding="utf-8")
    cli_env["CREDENTIALS_DIRECTORY"] = str(tmp_path)
    result = check_config(REPO / "configs" / "site.yaml", cli_env, python)
    assert result.returncode == 0, result.stderr
    assert "entrance: stream rtsp://***@192.0.2.10:554/stream1" in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("cameras:\n  - {id: '${env:CW_SECRET}', url: a.mp4}\n", "cameras[0].id"),  # fails the slug pattern
        ("metrics: {port: '${env:CW_SECRET}'}\ncameras:\n  - {id: a, url: a.mp4}\n", "metrics.port"),
        ("cameras:\n  - {id: a, url: 'ftp://u:${env:CW_SECRET}@h/x'}\n", "cameras[0].url"),
        ("metrics: {address: '${env:CW_SECRET}'}\ncameras:\n  - {id: a, url: a.mp4}\n", "metrics.address"),
        ("model: {device: '${env:CW_SECRET}'}\ncameras:\n  - {id: a, url: a.mp4}\n", "model.device"),
    ],
)
def test_an_invalid_value_from_a_secret_is_never_echoed(
    yaml_text: str, key: str, tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    cli_env["CW_SECRET"] = SECRET
    result = check_config(write_config(tmp_path, yaml_text), cli_env, python)
    assert result.returncode == 2
    assert f"  {key}:" in result.stderr
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("model", "files", "expected"),
    [
        ("{weights: missing.pt}", {}, "missing.pt: no such file"),
        (
            "{weights: frames.xml, backend: openvino}",
            {"frames.xml": b"<?xml version='1.0'?><net>"},
            "frames.bin",
        ),
        ("{weights: notes.pt}", {"notes.pt": b"just some text"}, "not a PyTorch checkpoint"),
        ("{weights: model.xml, backend: openvino}", {"model.xml": b"<html>", "model.bin": b"x"}, "no <net>"),
        ("{weights: empty.pt}", {"empty.pt": b""}, "the file is empty"),
        ("{weights: old.pt, backend: openvino}", {"old.pt": b"\x80\x02legacy"}, "zip format only"),
        ("{weights: notes.pt, backend: openvino}", {"notes.pt": b"some text"}, "not a PyTorch checkpoint"),
    ],
)
def test_a_weights_file_that_is_missing_or_not_for_its_backend_is_an_error(
    model: str, files: dict[str, bytes], expected: str, tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = check_config(write_config(tmp_path, f"model: {model}\n" + GOOD), cli_env, python)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "  model.weights: " in result.stderr and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_weights_default_and_a_real_checkpoint_pass_without_loading_the_network(
    tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    result = check_config(write_config(tmp_path, "model: {weights: default}\n" + GOOD), cli_env, python)
    assert result.returncode == 0, result.stderr
    assert "p2pnet_default.pt (torch)" in result.stdout
    config = write_config(tmp_path, "model: {weights: default}\n" + GOOD)
    probe = (
        "import sys; from crowdwatch.commands import check_config; "
        f"rc = check_config.main([{str(config)!r}]); assert rc == 0; "
        "assert 'torch' not in sys.modules, 'check-config imported torch'"
    )
    run = subprocess.run([python, "-c", probe], env=cli_env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
