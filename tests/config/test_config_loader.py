"""load_config: every error reported at once with its key path, and secrets substituted from the
environment or the credentials folder without ever showing."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from support.config_files import write_config

from crowdwatch.config import ConfigError, load_config

SECRET = "Pa55-w0rd-Zebra"


def test_load_config_reports_every_error_at_once(tmp_path: Path) -> None:
    text = (
        "defaults: {fps: 0}\nmetrics: {port: -1}\n"
        "cameras:\n  - {id: A, url: a.mp4}\n  - {id: b, url: b.mp4, lop: true}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, text))
    keys = [key for key, _ in info.value.errors]
    assert sorted(keys) == ["cameras[0].id", "cameras[1].lop", "defaults.fps", "metrics.port"]
    assert info.value.exit_code == 2


def test_secrets_from_env_and_credentials_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "cam-b").write_text(SECRET + "-b\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("CW_CAM_PASSWORD", SECRET)
    monkeypatch.setenv("CW_HOST", "192.0.2.5")
    config = load_config(
        write_config(
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
    assert a.url.reveal() == f"rtsp://admin:{SECRET}@192.0.2.5/a"
    assert b.url.reveal() == f"rtsp://admin:{SECRET}-b@192.0.2.6/b"
    assert c.url.reveal().endswith("literal-${not-a-ref}.mp4")
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
        load_config(write_config(tmp_path, text))
    errors = dict(info.value.errors)
    assert "credential nope not found" in errors["cameras[1].url"]
    assert "cameras[1].fps" in errors
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.errors)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(ConfigError, match=r"CREDENTIALS_DIRECTORY is not set"):
        load_config(write_config(tmp_path, text))
