"""``crowdwatch init``: a real RTSP camera (GStreamer) and a real file opened by the real capture code, the
written config checked by the real ``check-config``, the failure reasons as ``run`` would log them."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import cv2
import pytest
import yaml
from support.rtsp_fixtures import RtspServer, gstreamer_missing, make_clip, requires_ffmpeg

from crowdwatch.commands.init import default_id, split_secrets

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Init-s3cret-77q"


def init(args: list[str], env: dict[str, str], python: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "crowdwatch", "init", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120, check=False)  # fmt: skip


def check_config(path: Path, env: dict[str, str], python: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "crowdwatch", "check-config", str(path)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("source", "written", "secrets"),
    [
        ("rtsp://viewer:pw@10.0.0.5:554/s1", "rtsp://viewer:${credential:camera_cam}@10.0.0.5:554/s1",
         {"camera_cam": "pw"}),
        ("rtsp://u:p@ss@h/x?channel=1&token=abc", "rtsp://u:${credential:camera_cam}@h/x?channel=1"
         "&token=${credential:camera_cam_token}", {"camera_cam": "p@ss", "camera_cam_token": "abc"}),
        ("rtsp://h/live", "rtsp://h/live", {}),
        ("rtsp://user@h/live", "rtsp://user@h/live", {}),
        ("clips/a$b.mp4", "clips/a$b.mp4", {}),
        ("rtsp://h/${x}", "rtsp://h/$${x}", {}),
    ],
)  # fmt: skip
def test_passwords_become_credential_references(source: str, written: str, secrets: dict[str, str]) -> None:
    assert split_secrets(source, "cam") == (written, secrets)


def test_default_ids_are_slugs_from_the_source() -> None:
    assert default_id("rtsp://u:p@192.0.2.10:554/stream1") == "192-0-2-10"
    assert default_id("Clips/Hall Camera.mp4") == "hall-camera"
    assert default_id("0") == "device0"


@requires_ffmpeg
def test_rtsp_camera_gives_a_valid_config_without_its_password(
    tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    if gstreamer_missing():
        pytest.skip(str(gstreamer_missing()))
    server = RtspServer({"/live": "pattern:320x240@10"}).start()
    try:
        url = server.url("/live", f"viewer:{PASSWORD}")
        result = init([url, "--id", "hall", "--out", "site.yaml"], cli_env, python, tmp_path)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert "hall: 320x240, " in result.stdout and "codec h264" in result.stdout.lower()
    text = (tmp_path / "site.yaml").read_text()
    for output in (result.stdout, result.stderr, text):
        assert PASSWORD not in output
    config = yaml.safe_load(text)
    assert config["cameras"][0]["url"] == server.url("/live", "viewer:${credential:camera_hall}")
    assert config["web"] == {"enabled": True, "address": "127.0.0.1", "port": 9110}
    grid = cv2.imread(str(tmp_path / "site-hall-grid.jpg"))
    assert grid is not None and grid.shape == (240, 320, 3)
    # without the credential, check-config names it; with it, the file is valid
    missing = check_config(tmp_path / "site.yaml", cli_env, python)
    assert missing.returncode == 2 and "cameras[0].url: credential camera_hall" in missing.stderr
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "camera_hall").write_text(PASSWORD)
    cli_env["CREDENTIALS_DIRECTORY"] = str(tmp_path / "creds")
    valid = check_config(tmp_path / "site.yaml", cli_env, python)
    assert valid.returncode == 0, valid.stderr
    assert "live view: http://127.0.0.1:9110/" in valid.stdout and PASSWORD not in valid.stdout


def test_a_camera_that_cannot_be_opened_says_why(
    tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = init(
        [f"rtsp://viewer:{PASSWORD}@127.0.0.1:{port}/x", "--out", "s.yaml"], cli_env, python, tmp_path
    )
    assert result.returncode == 1
    assert f"cannot connect to 127.0.0.1:{port}: Connection refused" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert not (tmp_path / "s.yaml").exists()


@requires_ffmpeg
def test_a_video_file_is_written_relative_to_the_config(
    tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    (tmp_path / "clips").mkdir()
    clip = make_clip(tmp_path / "clips" / "entrance.mp4")
    result = init([str(clip), "--out", str(tmp_path / "site.yaml")], cli_env, python, REPO)
    assert result.returncode == 0, result.stderr
    assert "entrance: 320x240, 10 fps, codec h264" in result.stdout
    config = yaml.safe_load((tmp_path / "site.yaml").read_text())
    assert config["cameras"][0] == {"id": "entrance", "url": "clips/entrance.mp4", "fps": 5}
    assert check_config(tmp_path / "site.yaml", cli_env, python).returncode == 0
    again = init([str(clip), "--out", str(tmp_path / "site.yaml")], cli_env, python, REPO)
    assert again.returncode == 2 and "exists" in again.stderr  # never overwritten without --force


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("missing.mp4", "missing.mp4: no such file"),
        (
            f"ftp://viewer:{PASSWORD}@192.0.2.1/x",
            "ftp://***@192.0.2.1/x: not a camera source: unsupported scheme",
        ),
    ],
)
def test_a_bad_source_is_exit_2_with_the_reason(
    tmp_path: Path, cli_env: dict[str, str], python: str, source: str, expected: str
) -> None:
    result = init([source, "--out", "s.yaml"], cli_env, python, tmp_path)
    assert result.returncode == 2 and expected in result.stderr
    assert PASSWORD not in result.stdout + result.stderr and "Traceback" not in result.stderr
