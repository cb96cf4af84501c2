"""Hostile values and paths that used to get through (issue 23, item 4): each is a ConfigError (exit 2,
no traceback) naming the key and saying what was expected, before anything heavy loads."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest
from support.config_files import write_config

from crowdwatch.config import ConfigError, load_config
from crowdwatch.config.loader import MAX_INT_DIGITS

GOOD = "cameras:\n  - id: front\n    url: rtsp://127.0.0.1:8554/front\n"
#: Address space for a check-config subprocess: far more than it needs, far less than /dev/zero read whole.
CHECK_CONFIG_MEMORY = 1024**3


def errors_of(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.exit_code == 2
    return info.value.errors


def check_config(path: Path, env: dict[str, str], python: str) -> subprocess.CompletedProcess[str]:
    """``crowdwatch check-config PATH`` in a subprocess with bounded memory and time."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CHECK_CONFIG_MEMORY, CHECK_CONFIG_MEMORY))

    return subprocess.run(
        [python, "-m", "crowdwatch", "check-config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        preexec_fn=limit_memory,
    )


def test_a_5000_digit_integer_is_a_clear_error(tmp_path: Path, cli_env: dict[str, str], python: str) -> None:
    path = write_config(tmp_path, f"defaults:\n  fps: {'9' * 5000}\n" + GOOD)
    [(_key, message)] = errors_of(path)
    assert f"an integer of 5000 digits; expected at most {MAX_INT_DIGITS}" in message
    assert "line 2, column 8" in message
    proc = check_config(path, cli_env, python)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    # 64-bit integers still read: the cap is on digits, not on values a config may need
    assert load_config(write_config(tmp_path, f"defaults:\n  max_pixels: {2**63 - 1}\n" + GOOD, "ok.yaml"))


def _fifo(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "fifo.yaml")
    return tmp_path / "fifo.yaml"


def _zero_link(tmp_path: Path) -> Path:
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    return tmp_path / "zero.yaml"


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda tmp: Path("/dev/zero"), "a character device"),
        (_zero_link, "a character device"),
        (_fifo, "a named pipe (FIFO)"),
        (lambda tmp: tmp, "a directory"),
    ],
    ids=["dev-zero", "symlink-to-dev-zero", "fifo", "directory"],
)
def test_a_path_that_is_not_a_regular_file_is_refused_without_reading_it(
    make: object, kind: str, tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    assert callable(make)
    path = make(tmp_path)
    # /dev/zero was read without bound (5.3 GB, then a traceback) and a FIFO blocked forever: the
    # subprocess has 1 GiB of address space and 60 s
    proc = check_config(path, cli_env, python)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"not a regular file: {kind}; expected a YAML file" in proc.stderr


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("defaults:\n  fps: .nan\n" + GOOD, "defaults.fps", "not a number (NaN); expected a finite number"),
        ("model: {threshold: .nan}\n" + GOOD, "model.threshold", "not a number (NaN)"),
        (
            "cameras:\n  - id: a\n    url: a.mp4\n    pixels_per_metre: .inf\n",
            "cameras[0].pixels_per_metre",
            "must be finite",
        ),
        (
            "cameras:\n  - id: a\n    url: a.mp4\n    zones:\n"
            "      - {id: z, polygon: [[0, 0], [9, 0], [9, 9]], alert: {high: .inf, low: 1}}\n",
            "cameras[0].zones[0].alert.high",
            "must be finite",
        ),
        (
            "cameras:\n  - id: a\n    url: a.mp4\n    zones:\n"
            "      - {id: z, polygon: [[0, 0], [1.0e+300, 0], [0, 9]]}\n",
            "cameras[0].zones[0].polygon[1][0]",
            "less than or equal to 1000000",
        ),
        (
            "cameras:\n  - id: a\n    url: a.mp4\n    exclude:\n"
            "      - polygon: [[0, 0], [9, 0], [0, -1.0e+300]]\n",
            "cameras[0].exclude[0].polygon[2][1]",
            "greater than or equal to -1000000",
        ),
    ],
    ids=["nan-fps", "nan-threshold", "inf-scale", "inf-alert", "huge-zone-x", "huge-exclusion-y"],
)
def test_numbers_that_are_not_finite_or_out_of_bounds_say_so(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    errors = errors_of(write_config(tmp_path, text))
    assert any(k == key and message in m for k, m in errors), errors


def test_a_million_pixels_is_still_a_coordinate(tmp_path: Path) -> None:
    zone = "{id: z, polygon: [[0, 0], [1000000, 0], [0, -1000000]]}"
    text = f"cameras:\n  - id: a\n    url: a.mp4\n    zones:\n      - {zone}\n"
    assert load_config(write_config(tmp_path, text)).cameras[0].zones[0].polygon[1] == [1e6, 0]


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        ("bro ker", "it contains a space"),
        ("broker:1883", "it contains ':'"),
        ("-broker.example.org", "starts or ends with '-'"),
        ("broker..example.org", "an empty label"),
        ("bröker", "it contains 'ö'"),
    ],
)
def test_an_invalid_mqtt_host_is_refused(tmp_path: Path, host: str, fragment: str) -> None:
    errors = errors_of(write_config(tmp_path, f"mqtt: {{enabled: true, host: '{host}'}}\n" + GOOD))
    assert [key for key, _ in errors] == ["mqtt.host"]
    assert "expected a host name" in errors[0][1] and fragment in errors[0][1], errors


@pytest.mark.parametrize(
    "host", ["broker.example.org", "broker.example.org.", "mqtt_broker", "192.0.2.5", "::1"]
)
def test_valid_mqtt_hosts_pass(tmp_path: Path, host: str) -> None:
    config = load_config(write_config(tmp_path, f"mqtt: {{enabled: true, host: '{host}'}}\n" + GOOD))
    assert config.mqtt.host == host


@pytest.mark.parametrize(
    ("tls", "key", "fragment"),
    [
        ("ca_file: missing-ca.pem", "mqtt.tls.ca_file", "No such file"),
        ("ca_file: garbage.pem", "mqtt.tls.ca_file", "expected PEM CA certificates"),
        ("ca_file: a-folder", "mqtt.tls.ca_file", "Is a directory"),
        ("cert_file: garbage.pem", "mqtt.tls.cert_file/key_file", "expected a PEM certificate and its key"),
    ],
    ids=["missing-ca", "garbage-ca", "directory-as-ca", "garbage-cert"],
)
def test_check_config_refuses_mqtt_tls_files_that_cannot_be_loaded(
    tmp_path: Path, tls: str, key: str, fragment: str
) -> None:
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    (tmp_path / "a-folder").mkdir()
    text = f"mqtt:\n  enabled: true\n  tls: {{enabled: true, {tls}}}\n" + GOOD
    errors = errors_of(write_config(tmp_path, text))
    assert [k for k, _ in errors] == [key] and fragment in errors[0][1], errors
    # the same files with MQTT off are not loaded, so not checked
    assert load_config(
        write_config(tmp_path, text.replace("enabled: true\n", "enabled: false\n", 1), "off.yaml")
    )


def test_check_config_and_run_refuse_a_garbage_ca_before_loading_a_model(
    tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    path = write_config(
        tmp_path, "mqtt:\n  enabled: true\n  tls: {enabled: true, ca_file: garbage.pem}\n" + GOOD
    )
    checked = check_config(path, cli_env, python)
    assert checked.returncode == 2 and "mqtt.tls.ca_file: cannot load" in checked.stderr, checked.stderr
    run = subprocess.run(
        [python, "-m", "crowdwatch", "run", str(path)],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
    )
    assert run.returncode == 2 and "mqtt.tls.ca_file: cannot load" in run.stderr, run.stderr
    assert "model ready" not in run.stderr
