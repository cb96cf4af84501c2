"""`crowdwatch export` and the openvino backend from the command line: int8 calibrated on a site
config's camera (the real Mall clip), counting with the result, and the bad inputs that must be exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.exported_models import needs_extra

from crowdwatch.cli import main as cli

pytestmark = needs_extra


@pytest.mark.slow  # a whole export: ONNX, IR, NNCF statistics and the drift measurement (~30-55 s)
def test_int8_from_a_site_config_then_count_with_it(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = shared_data / "clips/mall_train_10fps.mp4"
    config = tmp_path / "site.yaml"
    config.write_text(f"cameras:\n  - id: mall\n    url: {clip}\n  - id: mall-b\n    url: {clip}\n")
    out = tmp_path / "models"
    options = "--format openvino --int8 --frames 2 --every 5 --longest-side 192".split()
    code = cli(["export", *options, "--calibration", str(config), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    int8 = out / "p2pnet_int8.xml"
    assert f"wrote {int8}" in capsys.readouterr().out
    assert (out / "p2pnet.xml").is_file() and int8.with_suffix(".bin").is_file()
    import openvino as ov

    meta = json.loads(str(ov.Core().read_model(str(int8)).get_rt_info(["crowdwatch"]).astype(str)))
    export = meta["export"]
    assert export["precision"] == "int8" and meta["arch"]["num_candidates"] == 4
    assert export["calibration"] == {
        "source": "site config",
        "path": str(config),
        "images": 4,
        "cameras": {"mall": 2, "mall-b": 2},
        "longest_side": 192,
    }
    drift = export["count_drift"]
    assert drift["images"] == 4 and drift["mean_count_fp32"] > 0 and drift["count_mae_vs_fp32"] >= 0

    frame = tmp_path / "frame.jpg"
    cv2.imwrite(
        str(frame), cv2.resize(cv2.imread(str(shared_data / "mall/train/seq_000001.jpg")), (192, 144))
    )
    code = cli(["count", "--backend", "openvino", "--weights", str(int8), "--json", str(frame)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == "openvino" and report["precision"] == "int8"
    assert report["images"][0]["count"] > 0


def test_calibration_folder_without_images_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here")
    code = cli(
        ["export", "--format", "openvino", "--int8", "--calibration", str(empty), "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"--calibration {empty}: the folder holds no images" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.xml"))  # nothing half-written


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "onnx", "--int8"], "--int8 is for --format openvino"),
        (["--format", "openvino", "--int8"], "--int8 needs --calibration"),
    ],
)
def test_export_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli(["export", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow  # a subprocess importing torch
def test_openvino_backend_without_the_extra_names_it(tmp_path: Path, cli_env: dict[str, str]) -> None:
    # The extra cannot be uninstalled here, so the child process makes `import openvino` fail
    # (sys.modules[name] = None is how Python marks a module as unimportable) and then runs the CLI.
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.full((32, 32, 3), 100, np.uint8))
    model = tmp_path / "p2pnet.xml"
    model.write_text("<net/>")
    wrapper = (
        "import sys; sys.modules['openvino'] = None\n"
        "from crowdwatch.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            wrapper,
            "count",
            "--backend",
            "openvino",
            "--weights",
            str(model),
            str(image),
        ],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'crowdwatch[openvino]'" in proc.stderr and "Traceback" not in proc.stderr


def test_export_without_the_extra_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # as above, in this process
    assert cli(["export", "--format", "openvino", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "crowdwatch export needs openvino" in err and "pip install 'crowdwatch[export]'" in err


@pytest.mark.slow  # a whole int8 export on two small frames
def test_int8_prints_the_count_drift_its_metadata_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crowdwatch.demo import render_frames

    frames = tmp_path / "frames"
    frames.mkdir()
    for seed in (1, 2):
        cv2.imwrite(str(frames / f"f{seed}.png"), render_frames(160, 128, 1, 25, seed=seed)[0])
    out = tmp_path / "models"
    argv = ["export", "--format", "openvino", "--int8", "--calibration", str(frames), "--longest-side", "160"]
    assert cli([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    import openvino as ov

    int8 = out / "p2pnet_int8.xml"
    meta = json.loads(str(ov.Core().read_model(str(int8)).get_rt_info(["crowdwatch"]).astype(str)))
    drift = meta["export"]["count_drift"]
    assert (
        "int8 count drift against the fp32 model on 2 calibration image(s): "
        f"MAE {drift['count_mae_vs_fp32']:g} "
        f"({drift['count_mae_percent_of_mean']:g}% of the mean count {drift['mean_count_fp32']:g})"
    ) in printed


@pytest.mark.parametrize("command", ["export", "benchmark"])
def test_help_shows_no_restructuredtext_markup(command: str, cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "crowdwatch", command, "--help"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "--calibration" in result.stdout or "--image" in result.stdout
    assert "``" not in result.stdout and ":func:" not in result.stdout, result.stdout
