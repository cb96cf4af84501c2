"""`crowdwatch count` end to end, as a subprocess, with hand-set weights whose count is known."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.model_builders import hand_set_net
from support.png_files import write_constant_png

from crowdwatch.model import save_checkpoint


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Candidate 2 positive in every cell, 3 px right and 1 px down of the centre.
    net = hand_set_net([(-2, -2), (2, -2), (3, 1), (2, 2)], [False, False, True, False])
    return save_checkpoint(tmp_path_factory.mktemp("w") / "hand.pt", net, provenance={"data": "hand-set"})


def run_count(python: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, "-m", "crowdwatch", "count", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_counts_json_overlay_and_unreadable_files(
    tmp_path: Path, weights: Path, python: str, cli_env: dict
) -> None:
    colour = tmp_path / "colour.jpg"
    gray = tmp_path / "gray.png"
    broken = tmp_path / "broken.jpg"
    cv2.imwrite(str(colour), np.full((48, 64, 3), 120, np.uint8))
    cv2.imwrite(str(gray), np.full((30, 41), 200, np.uint8))
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    missing = tmp_path / "missing.jpg"
    proc = run_count(
        python,
        cli_env,
        str(colour),
        str(broken),
        str(gray),
        str(missing),
        "--weights",
        str(weights),
        "--precision",
        "fp32",
        "--json",
        "--overlay",
        str(tmp_path / "ov"),
    )
    assert proc.returncode == 1  # two unreadable files, reported, the rest counted
    assert f"cannot read {broken}" in proc.stderr and f"cannot read {missing}" in proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["trained"] is True and report["unreadable"] == 2
    by_name = {Path(r["image"]).name: r for r in report["images"]}
    # 48x64: 6 x 8 cells, every point (centre + (3, 1)) inside the image.
    assert by_name["colour.jpg"]["count"] == 48
    assert by_name["colour.jpg"]["points"][0] == [7.0, 5.0]
    # 30x41 is padded to 32x48: cell centres x in 4..44 (+3 -> 7..47 > 41 drops x=44+3, 36+3 ok),
    # y in 4..28 (+1 -> 5..29 <= 30): 5 columns (7, 15, 23, 31, 39) x 4 rows.
    assert by_name["gray.png"]["count"] == 20
    assert by_name["gray.png"]["width"] == 41
    overlay = cv2.imread(str(tmp_path / "ov" / "colour.jpg"))
    assert overlay is not None and overlay.shape == (48, 64, 3)
    assert not np.array_equal(overlay, np.full((48, 64, 3), 120, np.uint8))


def test_plain_output_and_threshold(tmp_path: Path, weights: Path, python: str, cli_env: dict) -> None:
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    proc = run_count(python, cli_env, str(image), "--weights", str(weights), "--precision", "fp32")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"16\t{image}\n"
    # sigmoid(20) is just below 1: a threshold above it keeps nothing.
    proc = run_count(python, cli_env, str(image), "--weights", str(weights), "--threshold", "0.9999999999")
    assert proc.stdout.startswith("0\t")


def test_untrained_weights_say_counts_are_meaningless(tmp_path: Path, python: str, cli_env: dict) -> None:
    untrained = save_checkpoint(
        tmp_path / "init.pt", hand_set_net([(0, 0)], [True]), provenance={"untrained": True}
    )
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    proc = run_count(python, cli_env, str(image), "--weights", str(untrained), "--json")
    assert proc.returncode == 0
    assert "NO TRAINED WEIGHTS" in proc.stderr and "MEANINGLESS" in proc.stderr
    assert json.loads(proc.stdout)["trained"] is False


def test_without_any_weights_file_random_weights_are_announced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from crowdwatch.model import checkpoint
    from crowdwatch.model.predictor import Predictor

    # As on an install without packaged weights: the default path does not exist.
    monkeypatch.setattr(checkpoint, "DEFAULT_WEIGHTS", tmp_path / "absent.pt")
    with caplog.at_level("WARNING"):
        predictor = Predictor.from_checkpoint(None, device="cpu", precision="fp32")
    assert not predictor.trained
    assert "MEANINGLESS" in caplog.text


def test_packaged_default_weights_load_and_say_what_they_are(
    python: str, cli_env: dict, tmp_path: Path
) -> None:
    from crowdwatch.model.checkpoint import DEFAULT_WEIGHTS, load_checkpoint

    if not DEFAULT_WEIGHTS.exists():
        pytest.skip(f"no packaged weights in this checkout ({DEFAULT_WEIGHTS})")
    assert DEFAULT_WEIGHTS.stat().st_size <= 40e6
    _, meta = load_checkpoint(DEFAULT_WEIGHTS)
    assert meta.trained and meta.provenance, "the default weights must say what they were trained on"
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), 90, np.uint8))
    proc = run_count(python, cli_env, str(image))
    assert proc.returncode == 0 and "MEANINGLESS" not in proc.stderr


def test_bad_usage_exits_2(python: str, cli_env: dict) -> None:
    proc = run_count(python, cli_env, "x.jpg", "--precision", "int4")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    proc = subprocess.run(
        [python, "-m", "crowdwatch", "frobnicate"], capture_output=True, text=True, env=cli_env
    )
    assert proc.returncode == 2 and "unknown command 'frobnicate'" in proc.stderr


#: ``python -m crowdwatch``, reporting at exit the process's peak resident memory (VmHWM: this process
#: image only; ru_maxrss of a child forked from the test process would include the test's own memory)
#: and whether torch was imported
MEASURED_CLI = (
    "import atexit, sys\n"
    "def report():\n"
    "    hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM')][0].split()[1]\n"
    "    sys.stderr.write(f'MEASURED VmHWM_kB={hwm} torch={\"torch\" in sys.modules}\\n')\n"
    "atexit.register(report)\n"
    "from crowdwatch.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_a_pixel_bomb_exits_2_from_its_header_without_loading_torch(
    tmp_path: Path, python: str, cli_env: dict
) -> None:
    bomb = write_constant_png(
        tmp_path / "bomb.png", 12_000, 10_000
    )  # 120 MP: 360 MB decoded, GBs in the model
    proc = subprocess.run(
        [python, "-c", MEASURED_CLI, "count", str(bomb)],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "bomb.png: 12000x10000 = 120,000,000 pixels is over the pixel cap of 50,000,000" in proc.stderr
    assert "Traceback" not in proc.stderr
    measured = re.search(r"MEASURED VmHWM_kB=(\d+) torch=(\w+)", proc.stderr)
    assert measured, proc.stderr
    assert measured.group(2) == "False"  # refused before the model (and torch, ~0.7 GB) is loaded
    assert int(measured.group(1)) < 300_000  # kB: Python and OpenCV, ~60 MB


def test_refused_images_exit_2_and_the_others_are_counted(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crowdwatch.commands.count import main

    bomb = write_constant_png(tmp_path / "bomb.png", 10_000, 6_000)  # 60 MP: over the default cap
    small = write_constant_png(tmp_path / "small.png", 64, 48)  # 3072 pixels
    common = ["--weights", str(weights), "--precision", "fp32", "--device", "cpu"]
    assert main([str(bomb), str(small), *common, "--json"]) == 2
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["refused"] == 1 and [Path(r["image"]).name for r in report["images"]] == ["small.png"]
    assert "bomb.png: 10000x6000 = 60,000,000 pixels is over the pixel cap of 50,000,000" in err
    assert main([str(small), *common, "--max-pixels", "3072"]) == 0  # the cap is inclusive
    assert main([str(small), *common, "--max-pixels", "3071"]) == 2
    assert "64x48 = 3,072 pixels is over the pixel cap of 3,071" in capsys.readouterr().err


def test_the_precision_and_backend_choices_are_the_models() -> None:
    """count, evaluate and benchmark take their model options from one helper: the Predictor's choices."""
    import argparse

    from crowdwatch.commands import benchmark, count, evaluate
    from crowdwatch.commands.model_options import add_model_arguments
    from crowdwatch.model.predictor import BACKENDS, PRECISIONS

    parsers = [count.build_parser(), evaluate.build_parser()]
    bench = argparse.ArgumentParser()
    add_model_arguments(bench, devices=("cpu", "cuda"), threshold=False, geometry=False)
    parsers.append(bench)
    for parser in parsers:
        actions = {a.dest: a for a in parser._actions}  # argparse keeps its options in _actions
        assert tuple(actions["backend"].choices or ()) == BACKENDS
        assert tuple(actions["precision"].choices or ()) == PRECISIONS
        assert {"weights", "device", "url", "model_name", "timeout"} <= set(actions)
    assert "add_model_arguments(parser" in Path(benchmark.__file__).read_text()


@pytest.mark.slow
@pytest.mark.data
def test_a_big_image_is_counted_in_tiles_in_bounded_memory(
    tmp_path: Path, shared_data: Path, python: str, cli_env: dict
) -> None:
    source = cv2.imread(str(shared_data / "shanghaitech" / "part_A_train" / "IMG_1.jpg"))
    big, tiny = tmp_path / "big.jpg", tmp_path / "tiny.jpg"
    cv2.imwrite(str(big), cv2.resize(source, (2048, 768), interpolation=cv2.INTER_CUBIC))  # 1.57 MP
    cv2.imwrite(str(tiny), cv2.resize(source, (64, 48), interpolation=cv2.INTER_AREA))
    tile_pixels = 768 * 768

    def peak_kb(image: Path) -> int:
        argv = [
            "count",
            str(image),
            "--precision",
            "fp32",
            "--device",
            "cpu",
            "--tile-pixels",
            str(tile_pixels),
        ]
        proc = subprocess.run(
            [python, "-c", MEASURED_CLI, *argv], capture_output=True, text=True, env=cli_env, timeout=600
        )
        assert proc.returncode == 0, proc.stderr
        measured = re.search(r"MEASURED VmHWM_kB=(\d+)", proc.stderr)
        assert measured, proc.stderr
        return int(measured.group(1))

    # The peak of one forward pass holds VGG16's first two feature maps at the input's resolution: 64
    # float32 channels each, 512 bytes per input pixel. Counting the tiny image costs what torch and the
    # weights cost; the big one may add one tile's maps (a quarter more for the allocator's slack), well
    # below what the whole image's maps would take.
    maps_per_pixel = 2 * 64 * 4
    tile_bound_kb = 1.25 * maps_per_pixel * tile_pixels / 1024
    whole_kb = maps_per_pixel * 2048 * 768 / 1024
    base, tiled = peak_kb(tiny), peak_kb(big)
    print(f"peak RSS: {base / 1024:.0f} MB on 64x48, {tiled / 1024:.0f} MB on 2048x768 in tiles of 768x768")
    assert tiled - base < tile_bound_kb < whole_kb


def test_the_tile_budget_in_the_help_is_the_models_default() -> None:
    from crowdwatch.commands import count, evaluate
    from crowdwatch.model.tiling import DEFAULT_TILE_PIXELS

    for command in (count, evaluate):
        assert f"(default: {DEFAULT_TILE_PIXELS:,} " in " ".join(command.build_parser().format_help().split())
