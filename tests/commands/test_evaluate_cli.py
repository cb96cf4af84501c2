"""``crowdwatch evaluate``: the files it writes, its report, and clear errors for unreadable data."""

import csv
import json

import numpy as np
import pytest
import torch

from crowdwatch.cli import main as cli_main
from crowdwatch.commands.evaluate import main, numbers_end_at_first_non_number
from crowdwatch.data.synthetic import write_blob_folder
from crowdwatch.errors import DataError
from crowdwatch.model.checkpoint import save_checkpoint
from crowdwatch.model.p2pnet import P2PNet


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "w.pt", P2PNet(), provenance={"note": "random, for tests"})


def test_command_writes_csv_json_and_worst_overlays(tmp_path, weights, capsys):
    torch.set_num_threads(1)
    data = write_blob_folder(tmp_path / "blobs", 6, size=(64, 80), max_count=5)
    out = tmp_path / "eval"
    code = main(
        [
            "--weights",
            str(weights),
            f"synth={data}",
            "--out",
            str(out),
            "--worst",
            "2",
            "--split",
            "val",
            "--val-every",
            "3",
            "--precision",
            "fp32",
            "--no-progress",
            "--sweep",
            "0.5",
            "0.45",
            "--breakdown",
        ]
    )
    assert code == 0
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    tables = json.loads((out / "breakdown.json").read_text())
    for key in ("by_size", "by_density", "by_region"):
        assert sum(b["gt"] for b in tables["synth"][key]) == sum(int(r["gt_count"]) for r in rows)
        assert sum(b["pred"] for b in tables["synth"][key]) == sum(int(r["pred_count"]) for r in rows)
        assert sum(b["tp"] for b in tables["synth"][key]) == sum(int(r["tp_8px"]) for r in rows)
    assert [r["image"] for r in rows] == ["img_0000.png", "img_0003.png"]
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["datasets"]["synth"]
    errors = [abs(int(r["pred_count"]) - int(r["gt_count"])) for r in rows]
    assert (
        entry["mae"] == pytest.approx(np.mean(errors))
        and "rmse" in entry
        and "f1" in entry["localization"]["8px"]
    )
    assert len(list((out / "worst").glob("*.jpg"))) == 2
    # the sweep at the checkpoint's own threshold (0.5) is the main report, localization included
    assert summary["threshold_sweep"]["0.5"]["synth"] == entry
    sweep_045 = summary["threshold_sweep"]["0.45"]["all"]
    assert sweep_045["pred_total"] >= entry["pred_total"] and "f1" in sweep_045["localization"]["4px"]
    lowest = summary["threshold_lowest_mae"]
    assert lowest == min(["0.45", "0.5"], key=lambda t: summary["threshold_sweep"][t]["all"]["mae"])
    printed = capsys.readouterr().out
    assert f"lowest MAE over all images at {lowest}" in printed
    assert any(line.split()[:1] == ["0.45"] for line in printed.splitlines())
    assert "synth: recall and precision at 8 px" in printed and "| synth | 2 |" in printed
    train_counts = [len((data / f"img_{i:04d}.txt").read_text().split()) // 2 for i in (1, 2, 4, 5)]
    base = summary["baseline_mean_count"]["synth"]
    assert base["train_mean_count"] == pytest.approx(np.mean(train_counts))
    truth = [int(r["gt_count"]) for r in rows]
    assert base["mae"] == pytest.approx(np.mean([abs(t - np.mean(train_counts)) for t in truth]))


def test_unreadable_data_exits_non_zero_with_a_clear_message(tmp_path, weights, capfd):
    data = write_blob_folder(tmp_path / "blobs", 2, size=(32, 32))
    (data / "img_0001.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"img_0001\.png: cannot read image") as info:
        main(["--weights", str(weights), str(data), "--no-progress", "--out", str(tmp_path / "e")])
    assert info.value.exit_code == 2
    code = cli_main(
        ["evaluate", "--weights", str(weights), str(data), "--out", str(tmp_path / "e"), "--no-progress"]
    )
    assert code == 2
    assert "crowdwatch: error: " in capfd.readouterr().err
    assert cli_main(["evaluate", "--weights", str(weights), str(tmp_path / "nowhere"), "--no-progress"]) == 2


def test_number_lists_before_the_folders_end_at_the_first_folder(tmp_path, weights):
    # --sweep and --radii take one or more numbers: the folders after them are folders, not numbers.
    a = write_blob_folder(tmp_path / "a", 2, size=(32, 32), max_count=3, seed=1)
    b = write_blob_folder(tmp_path / "b", 2, size=(32, 32), max_count=3, seed=2)
    out = tmp_path / "eval"
    code = main(
        [
            "--weights",
            str(weights),
            "--sweep",
            "0.4",
            "0.5",
            f"first={a}",
            "--radii",
            "4",
            "6",
            f"second={b}",
            "--out",
            str(out),
            "--worst",
            "0",
            "--precision",
            "fp32",
            "--no-progress",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["threshold_sweep"]) == {"0.4", "0.5"}
    assert summary["datasets"]["first"]["images"] == 2 and summary["datasets"]["second"]["images"] == 2
    assert set(summary["datasets"]["all"]["localization"]) == {"4px", "6px"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--sweep", "0.4", "0.5", "d"], ["d", "--sweep", "0.4", "0.5"]),
        (["d", "--sweep", "0.4", "--out", "o"], ["d", "--out", "o", "--sweep", "0.4"]),
        (["--sweep", "d"], ["--sweep", "d"]),  # no number: left for argparse to refuse
        (["--sweep", "0.4", "--", "-d"], ["--sweep", "0.4", "--", "-d"]),
        (["--radii", "-1", "2e1", "d"], ["d", "--radii", "-1", "2e1"]),
    ],
)
def test_number_lists_are_moved_after_the_other_arguments(argv, expected):
    assert numbers_end_at_first_non_number(argv) == expected


def test_an_image_over_max_pixels_stops_evaluate_with_exit_2(tmp_path, weights, capfd):
    data = write_blob_folder(tmp_path / "blobs", 2, size=(32, 32))
    args = ["evaluate", "--weights", str(weights), str(data), "--no-progress", "--out", str(tmp_path / "e")]
    assert cli_main([*args, "--max-pixels", "1024"]) == 0  # 32x32: exactly at the cap
    assert cli_main([*args, "--max-pixels", "1023"]) == 2
    assert "img_0000.png: 32x32 = 1,024 pixels is over the pixel cap of 1,023" in capfd.readouterr().err


def test_weights_default_is_the_packaged_checkpoint(tmp_path):
    """`count` says "weights": "default" and training takes `init_from: default`: evaluate takes it too."""
    torch.set_num_threads(1)
    data = write_blob_folder(tmp_path / "blobs", 2, size=(64, 80), max_count=3)
    out = tmp_path / "eval"
    argv = [
        "--weights",
        "default",
        f"synth={data}",
        "--out",
        str(out),
        "--precision",
        "fp32",
        "--no-progress",
    ]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["weights"] == "default" and summary["datasets"]["synth"]["images"] == 2


def test_two_folders_with_one_name_are_refused_before_the_model_loads(tmp_path, capfd):
    for sub in ("a/data", "b/data"):
        (tmp_path / sub).mkdir(parents=True)
    code = cli_main(
        [
            "evaluate",
            str(tmp_path / "a/data"),
            str(tmp_path / "b/data"),
            "--weights",
            "default",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "'data' names more than one folder" in capfd.readouterr().err
