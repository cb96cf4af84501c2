"""The demo clip: synthetic, decodable, and where configs/demo.yaml looks for it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from crowdwatch.cli import main
from crowdwatch.config import load_config
from crowdwatch.demo import DEFAULT_PATH, make_demo_clip
from crowdwatch.demo.gate import GATE_PATH

REPO = Path(__file__).resolve().parent.parent


def test_demo_clip_decodes_with_moving_content(tmp_path: Path) -> None:
    path = make_demo_clip(tmp_path / "sub" / "demo.mp4", width=160, height=96, seconds=1, fps=10, people=8)
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 10
    assert frames[0].shape == (96, 160, 3)
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1.0  # the "people" move


def test_demo_config_plays_the_clips_the_demo_command_writes() -> None:
    config = load_config(REPO / "configs" / "demo.yaml")
    urls = {Path(camera.url.reveal()).resolve() for camera in config.cameras if camera.kind == "file"}
    assert urls == {(REPO / DEFAULT_PATH).resolve(), (REPO / GATE_PATH).resolve()}
    gate = next(camera for camera in config.cameras if camera.lines)
    assert Path(gate.url.reveal()).resolve() == (REPO / GATE_PATH).resolve()


def test_demo_cli_writes_the_gate_clip_and_its_truth(tmp_path: Path) -> None:
    gate = tmp_path / "g.mp4"
    clips = ["--clip", str(tmp_path / "d.mp4"), "--gate", str(gate), "--truth", "--clip-only"]
    assert main(["demo", *clips, "--seconds", "0.2", "--size", "64x48"]) == 0
    capture = cv2.VideoCapture(str(gate))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (180, 320, 3)
    crossings = gate.with_suffix(".crossings.csv").read_text().splitlines()
    assert crossings[0] == "person,line,direction,t,x,y" and len(crossings) > 5  # 60 s of people crossing
    assert gate.with_suffix(".tracks.csv").read_text().startswith("person,t,x,y\n")


def test_demo_cli_writes_requested_size(tmp_path: Path) -> None:
    clip = ["--clip", str(tmp_path / "d.mp4"), "--clip-only", "--gate", ""]
    assert main(["demo", *clip, "--seconds", "0.5", "--size", "64x48", "--fps", "4"]) == 0
    assert not (tmp_path / "gate.mp4").exists()
    capture = cv2.VideoCapture(str(tmp_path / "d.mp4"))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (48, 64, 3)


def test_demo_refuses_a_bad_size_and_a_missing_config(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--clip", str(tmp_path / "d.mp4"), "--clip-only", "--size", "big"]) == 2
    assert "--size must look like 640x360" in capsys.readouterr().err
    assert main(["demo", "--config", str(tmp_path / "nope.yaml"), "--clip", str(tmp_path / "d.mp4")]) == 2
    assert "run crowdwatch demo from the repository root" in capsys.readouterr().err
    assert not (tmp_path / "d.mp4").exists()  # nothing written before the usage error
