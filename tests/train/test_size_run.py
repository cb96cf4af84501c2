"""scripts/size_run.py: a config sized to a wall-clock budget from the step rate measured here."""

import subprocess
import sys
from pathlib import Path

import pytest

from crowdwatch.data.synthetic import write_blob_folder
from crowdwatch.train.config import load_train_config

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "size_run.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_script(*args):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, check=False
    )


def test_sized_config_fits_the_budget_and_reads_from_anywhere(tmp_path):
    data = write_blob_folder(tmp_path / "data" / "blobs", 8, size=(48, 48), max_count=4)
    config = tmp_path / "configs" / "train.yaml"
    config.parent.mkdir()
    config.write_text(
        "data: {datasets: [{path: ../data/blobs}], val_every: 0}\n"
        "train: {steps: 3, lr_drop_step: 2, images_per_step: 1, crops_per_image: 1, crop_size: 32, "
        "workers: 0, threads: 1}\n"
    )
    out = tmp_path / "elsewhere" / "sized.yaml"
    proc = run_script(config, "--minutes", "0.2", "--calibrate", "8", "--drop-at", "0.6", "--out", out)
    assert proc.returncode == 0, proc.stderr
    header = out.read_text().splitlines()[0]
    # the header keeps the rate exactly (repr); the 2 decimals printed could round across a step
    rate = float(header.split(": ")[1].split(" steps/s")[0])
    assert proc.stdout.startswith(f"{rate:.2f} steps/s")
    sized = load_train_config(out)
    assert sized.data.datasets[0].path == data  # absolute: the copy lives in another folder
    # the steps are the measured rate times the budget (x0.95), the drop at 60% of them
    assert sized.train.steps == max(8, int(rate * 0.2 * 60 * 0.95))
    assert sized.train.lr_drop_step == max(1, round(sized.train.steps * 0.6))
    assert out.read_text().startswith(f"# {config} sized by scripts/size_run.py")
    assert not list(tmp_path.glob("**/last.pt"))  # the calibration run left nothing behind


def test_bad_arguments_are_refused(tmp_path):
    proc = run_script(tmp_path / "x.yaml", "--minutes", "0", "--out", tmp_path / "y.yaml")
    assert proc.returncode == 2 and "--minutes" in proc.stderr


def test_a_known_rate_sizes_without_training(tmp_path):
    data = write_blob_folder(tmp_path / "blobs", 4, size=(48, 48), max_count=4)
    config = tmp_path / "train.yaml"
    config.write_text(f"data: {{datasets: [{{path: {data}}}], val_every: 0}}\ntrain: {{steps: 3}}\n")
    out = tmp_path / "sized.yaml"
    proc = run_script(config, "--minutes", "2", "--rate", "21.5", "--out", out)
    assert proc.returncode == 0, proc.stderr
    sized = load_train_config(out)
    assert sized.train.steps == int(21.5 * 2 * 60 * 0.95)  # 2451
    assert sized.train.lr_drop_step == round(sized.train.steps * 0.75)
    assert "21.5 steps/s given (--rate)" in out.read_text().splitlines()[0]
    assert not (tmp_path / "log.csv").exists()
    bad = run_script(config, "--minutes", "2", "--rate", "-1", "--out", out)
    assert bad.returncode == 2 and "--rate" in bad.stderr
