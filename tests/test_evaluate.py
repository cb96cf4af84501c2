"""crowdwatch evaluate: metrics on hand-made predictions equal hand-computed values; the command's files."""

import csv
import json
import math

import numpy as np
import pytest
import torch

from crowdwatch.cli import main as cli_main
from crowdwatch.evaluate import ImageResult, evaluate_command, summarize, threshold_sweep
from crowdwatch.model.checkpoint import save_checkpoint
from crowdwatch.model.p2pnet import P2PNet
from crowdwatch.train.dataset import DataError
from crowdwatch.train.metrics import matched_within
from crowdwatch.train.synthetic import write_blob_folder


def pts(*xy):
    return np.asarray(xy, dtype=np.float32).reshape(-1, 2)


HAND_MADE = [
    # counts 3 vs 2; (3,0)-(0,0) is 3 px; (10,7)-(10,0) is 7 px; (50,50) is far from everything.
    ImageResult("a", "1", gt=pts((0, 0), (10, 0)), pred=pts((3, 0), (10, 7), (50, 50))),
    ImageResult("a", "2", gt=pts((5, 5)), pred=pts()),
    # one prediction close to three ground-truth points can match only one of them.
    ImageResult("b", "3", gt=pts((0, 0), (1, 0), (2, 0)), pred=pts((0.5, 0))),
]


def test_metrics_equal_hand_computed_values():
    s = summarize(HAND_MADE, radii=(4.0, 8.0))
    assert s["a"]["mae"] == 1.0 and s["a"]["rmse"] == 1.0
    assert s["b"]["mae"] == 2.0 and s["b"]["rmse"] == 2.0
    assert s["all"]["mae"] == pytest.approx(4 / 3) and s["all"]["rmse"] == pytest.approx(math.sqrt(2))
    a4, a8 = s["a"]["localization"]["4px"], s["a"]["localization"]["8px"]
    assert (a4["tp"], a4["precision"], a4["recall"], a4["f1"]) == (1, pytest.approx(1 / 3), pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert (a8["tp"], a8["precision"], a8["recall"]) == (2, pytest.approx(2 / 3), pytest.approx(2 / 3))
    b4 = s["b"]["localization"]["4px"]
    assert (b4["tp"], b4["precision"], b4["recall"], b4["f1"]) == (1, 1.0, pytest.approx(1 / 3), pytest.approx(0.5))
    all4, all8 = s["all"]["localization"]["4px"], s["all"]["localization"]["8px"]
    assert (all4["precision"], all4["recall"], all4["f1"]) == (0.5, pytest.approx(1 / 3), pytest.approx(0.4))
    assert (all8["precision"], all8["recall"], all8["f1"]) == (0.75, 0.5, pytest.approx(0.6))
    assert s["all"]["images"] == 3 and s["all"]["gt_total"] == 6 and s["all"]["pred_total"] == 4


def test_threshold_sweep_counts_per_threshold():
    # gt counts: 2, 1, 3; counts at thresholds 0.3 / 0.5: (4, 3), (1, 0), (3, 1)
    sweep = threshold_sweep(HAND_MADE, [0.3, 0.5], [[4, 3], [1, 0], [3, 1]])
    assert sweep["0.3"]["a"] == {"mae": 1.0, "rmse": pytest.approx(math.sqrt(2))}
    assert sweep["0.5"]["all"]["mae"] == pytest.approx(4 / 3) and sweep["0.3"]["b"]["mae"] == 0.0


def test_matching_is_one_to_one_and_maximal_not_greedy():
    gt = pts((0, 0), (6, 0))
    # (3,0) is nearest to both; a greedy nearest-first matching pairs it with (0,0) and strands (-3,0).
    pred = pts((3, 0), (-3, 0))
    assert matched_within(pred, gt, 4.0) == 2
    assert matched_within(pts((0, 0)), pts((0, 0), (0, 1)), 4.0) == 1
    assert matched_within(pts(), gt, 4.0) == 0 and matched_within(pred, pts(), 4.0) == 0


@pytest.fixture()
def weights(tmp_path):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "w.pt", P2PNet(), provenance={"note": "random, for tests"})


def test_command_writes_csv_json_and_worst_overlays(tmp_path, weights):
    torch.set_num_threads(1)
    data = write_blob_folder(tmp_path / "blobs", 6, size=(64, 80), max_count=5)
    out = tmp_path / "eval"
    code = evaluate_command(["--weights", str(weights), f"synth={data}", "--out", str(out), "--worst", "2",
                             "--split", "val", "--val-every", "3", "--precision", "fp32", "--no-progress",
                             "--sweep", "0.5", "0.45"])
    assert code == 0
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert [r["image"] for r in rows] == ["img_0000.png", "img_0003.png"]
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["datasets"]["synth"]
    errors = [abs(int(r["pred_count"]) - int(r["gt_count"])) for r in rows]
    assert entry["mae"] == pytest.approx(np.mean(errors)) and "rmse" in entry and "f1" in entry["localization"]["8px"]
    assert len(list((out / "worst").glob("*.jpg"))) == 2
    assert summary["threshold_sweep"]["0.5"]["synth"]["mae"] == pytest.approx(entry["mae"])
    assert summary["threshold_sweep"]["0.45"]["all"]["mae"] >= 0
    train_counts = [len((data / f"img_{i:04d}.txt").read_text().split()) // 2 for i in (1, 2, 4, 5)]
    base = summary["baseline_mean_count"]["synth"]
    assert base["train_mean_count"] == pytest.approx(np.mean(train_counts))
    truth = [int(r["gt_count"]) for r in rows]
    assert base["mae"] == pytest.approx(np.mean([abs(t - np.mean(train_counts)) for t in truth]))


def test_unreadable_data_exits_non_zero_with_a_clear_message(tmp_path, weights, capfd):
    data = write_blob_folder(tmp_path / "blobs", 2, size=(32, 32))
    (data / "img_0001.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="img_0001.png: cannot read image") as info:
        evaluate_command(["--weights", str(weights), str(data), "--no-progress", "--out", str(tmp_path / "e")])
    assert info.value.exit_code == 2
    code = cli_main(["evaluate", "--weights", str(weights), str(data), "--out", str(tmp_path / "e"), "--no-progress"])
    assert code == 2
    assert "crowdwatch: error: " in capfd.readouterr().err
    assert cli_main(["evaluate", "--weights", str(weights), str(tmp_path / "nowhere"), "--no-progress"]) == 2
