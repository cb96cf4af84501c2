"""Config loading: bad configs rejected by `crowdwatch check-config` with their key path, defaults
merged into cameras, relative paths, and secrets that never show."""

from __future__ import annotations

import pickle
import subprocess
import textwrap
from pathlib import Path

import pytest

from crowdwatch.config import ConfigError, load_config

REPO = Path(__file__).resolve().parent.parent
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
        "cameras[0].zones[0].alert",
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


def write(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "text", "key", "expected"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_check_config_rejects_bad_config_naming_the_key(
    name: str, text: str, key: str, expected: str, tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    cli_env.pop("CW_TEST_UNSET_VAR", None)
    result = check_config(write(tmp_path, text), cli_env, python)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
    if key.startswith("line ") or not key:  # a whole-file (YAML) error: the position is in the message
        wanted = [line for line in error_lines if line.startswith("<top level>:") and key in line]
    else:
        wanted = [line for line in error_lines if line.startswith(f"{key}:")]
    assert wanted and any(expected in line for line in wanted), result.stderr


def test_load_config_reports_every_error_at_once(tmp_path: Path) -> None:
    text = (
        "defaults: {fps: 0}\nmetrics: {port: -1}\n"
        "cameras:\n  - {id: A, url: a.mp4}\n  - {id: b, url: b.mp4, lop: true}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    keys = [key for key, _ in info.value.errors]
    assert sorted(keys) == ["cameras[0].id", "cameras[1].lop", "defaults.fps", "metrics.port"]
    assert info.value.exit_code == 2


def test_valid_config_exit_0_with_a_masked_summary(
    tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    cli_env["CW_CAM_PASSWORD"] = SECRET
    path = write(
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


def test_defaults_merge_into_each_camera(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
        defaults:
          fps: 3
          read_timeout_s: 2
          reconnect: {initial_s: 0.5, max_s: 8}
        cameras:
          - id: a
            url: a.mp4
          - id: b
            url: rtsp://h/x
            fps: null
            read_timeout_s: 7
            reconnect: {max_s: 60}
        """,
        )
    )
    a, b = config.cameras
    assert (a.fps, a.read_timeout_s, a.reconnect.initial_s, a.reconnect.max_s) == (3, 2, 0.5, 8)
    assert (b.fps, b.read_timeout_s, b.reconnect.initial_s, b.reconnect.max_s) == (None, 7, 0.5, 60)
    assert a.open_timeout_s == b.open_timeout_s == 5.0  # neither set: the built-in default
    assert config.defaults.fps == 3
    assert config.metrics.address == "127.0.0.1" and config.metrics.port == 9108


def test_camera_override_is_checked_against_the_merged_reconnect(tmp_path: Path) -> None:
    text = (
        "defaults:\n  reconnect: {initial_s: 5, max_s: 10}\n"
        "cameras:\n  - {id: a, url: a.mp4, reconnect: {max_s: 2}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert [key for key, _ in info.value.errors] == ["cameras[0].reconnect"]


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    config = load_config(
        write(
            tmp_path / "etc",
            """
        model: {weights: weights/p2p.pth}
        cameras:
          - {id: a, url: clips/a.mp4}
          - {id: b, url: /abs/b.mp4}
        output: {dir: ../out}
        """,
        )
    )
    assert config.model.weights == tmp_path / "etc" / "weights" / "p2p.pth"
    assert config.cameras[0].url.reveal() == str(tmp_path / "etc" / "clips" / "a.mp4")  # type: ignore[union-attr]
    assert config.cameras[1].url.reveal() == "/abs/b.mp4"  # type: ignore[union-attr]
    assert config.output.dir == tmp_path / "out"
    assert config.cameras[0].kind == "file"


def test_secrets_from_env_and_credentials_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "cam-b").write_text(SECRET + "-b\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("CW_CAM_PASSWORD", SECRET)
    monkeypatch.setenv("CW_HOST", "192.0.2.5")
    config = load_config(
        write(
            tmp_path,
            """
        cameras:
          - {id: a, url: "rtsp://admin:${env:CW_CAM_PASSWORD}@${env:CW_HOST}/a"}
          - {id: b, url: "rtsp://admin:${credential:cam-b}@192.0.2.6/b"}
          - {id: c, url: "literal-$${not-a-ref}.mp4"}
        """,
        )
    )
    a, b, c = config.cameras
    assert a.url.reveal() == f"rtsp://admin:{SECRET}@192.0.2.5/a"  # type: ignore[union-attr]
    assert b.url.reveal() == f"rtsp://admin:{SECRET}-b@192.0.2.6/b"  # type: ignore[union-attr]
    assert c.url.reveal().endswith("literal-${not-a-ref}.mp4")  # type: ignore[union-attr]
    shown = [
        repr(config),
        str(config),
        config.model_dump_json(),
        str(config.model_dump()),
        f"{a.url}",
        a.display_url,
        repr(config.secrets),
    ]
    assert all(SECRET not in text for text in shown)
    assert str(a.url) == "rtsp://***@***/a"  # every substituted value is hidden, the host too
    assert pickle.loads(pickle.dumps(a.url)) == a.url


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
    result = check_config(write(tmp_path, yaml_text), cli_env, python)
    assert result.returncode == 2
    assert f"  {key}:" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_missing_credential_names_key_and_credential_not_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    monkeypatch.setenv("CW_CAM_PASSWORD", SECRET)
    text = (
        "cameras:\n  - {id: a, url: 'rtsp://u:${env:CW_CAM_PASSWORD}@h/a'}\n"
        "  - {id: b, url: 'rtsp://u:${credential:nope}@h/b', fps: -1}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    errors = dict(info.value.errors)
    assert "credential nope not found" in errors["cameras[1].url"]
    assert "cameras[1].fps" in errors
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.errors)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(ConfigError, match=r"CREDENTIALS_DIRECTORY is not set"):
        load_config(write(tmp_path, text))


def test_a_digit_string_is_a_device_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CW_CAMERA_INDEX", "2")
    config = load_config(write(tmp_path, "cameras:\n  - {id: a, url: '${env:CW_CAMERA_INDEX}'}\n"))
    assert config.cameras[0].url == 2 and config.cameras[0].kind == "device"
