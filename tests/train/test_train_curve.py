"""scripts/train_curve.py: the validation curve of chained training stages, read from their log.csv."""

import subprocess
import sys
from pathlib import Path

from crowdwatch.train.log import CurveLog

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_curve.py"


def write_run(run: Path, steps: int, val: dict[int, float], seconds_per_step: float) -> None:
    """A real CurveLog as the trainer writes it: a row per step, validation on the steps in ``val``."""
    run.mkdir()
    log = CurveLog(run / "log.csv", ["a", "b"], resume_step=None)
    for step in range(1, steps + 1):
        row = {
            "step": step,
            "loss": 0.1,
            "loss_cls": 0.05,
            "loss_point": 5.0,
            "grad_norm": 1.0,
            "lr": 1e-4,
            "lr_backbone": 1e-5,
            "elapsed_s": step * seconds_per_step,
        }
        metrics = None
        if step in val:
            mae = val[step]
            metrics = {
                "all": {"mae": mae, "rmse": mae},
                "a": {"mae": 2 * mae, "rmse": 0},
                "b": {"mae": mae / 2, "rmse": 0},
            }
        log.write(row, metrics)
    log.close()


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def test_a_second_stage_counts_on_from_the_step_it_started_from(tmp_path):
    write_run(tmp_path / "one", 30, {10: 50.0, 20: 40.0, 30: 45.0}, seconds_per_step=6.0)
    write_run(tmp_path / "two", 20, {10: 30.0, 20: 35.0}, seconds_per_step=3.0)
    proc = run_script(str(tmp_path / "one"), f"{tmp_path / 'two'}:20")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "| stage | step | wall min | MAE all | a | b |"
    body = [line.split(" | ") for line in lines[2:]]
    # stage 1 as logged; stage 2 from step 20 (2 minutes in): step 20 + 10, 2 + 0.5 minutes
    assert [(cells[1], cells[2], cells[3]) for cells in body] == [
        ("10", "1", "50.00"),
        ("20", "2", "40.00"),
        ("30", "3", "45.00"),
        ("30 (best)", "2", "30.00"),
        ("40", "3", "35.00"),
    ]
    assert body[3][4:] == ["60.00", "15.00 |"]


def test_a_later_stage_without_its_start_step_is_refused(tmp_path):
    write_run(tmp_path / "one", 10, {10: 5.0}, seconds_per_step=1.0)
    write_run(tmp_path / "two", 10, {10: 4.0}, seconds_per_step=1.0)
    proc = run_script(str(tmp_path / "one"), str(tmp_path / "two"))
    assert proc.returncode != 0
    assert "DIR:STEP" in proc.stderr
    proc = run_script(str(tmp_path / "one"), f"{tmp_path / 'two'}:70")
    assert proc.returncode != 0
    assert "no step 70" in proc.stderr


def test_a_folder_without_a_log_is_a_clear_error(tmp_path):
    proc = run_script(str(tmp_path))
    assert proc.returncode != 0
    assert "does not exist" in proc.stderr


def test_the_ratios_are_shown_where_the_log_has_them(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    log = CurveLog(run / "log.csv", ["a"], resume_step=None)
    row = {"step": 1, "loss": 0.1, "elapsed_s": 60.0}
    log.write(
        row,
        {
            "all": {"mae": 9.0, "rmse": 9.0, "mass_ratio": 1.25, "counted_ratio": 0.5},
            "a": {"mae": 9.0, "rmse": 9.0},
        },
    )
    log.close()
    proc = run_script(str(run))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].endswith("| a | mass / counted |")
    assert proc.stdout.splitlines()[2] == "| 1 | 1 (best) | 1 | 9.00 | 9.00 | 1.25 / 0.50 |"
