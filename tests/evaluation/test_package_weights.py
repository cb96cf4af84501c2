"""scripts/package_weights.py: fp16 weights with the validated threshold, and the ship-only-if-better rule."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crowdwatch.commands.evaluate import main as evaluate
from crowdwatch.data.synthetic import write_blob_folder
from crowdwatch.model.checkpoint import load_checkpoint, read_checkpoint_file, save_checkpoint
from crowdwatch.model.p2pnet import P2PNet

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "package_weights.py"

STAGE_1 = {"steps": 625, "wall_time_s": 1000.0, "precision": "fp32", "backbone_init": {"source": "file"}}
STAGE_2 = {
    "steps": 900,
    "wall_time_s": 500.0,
    "precision": "fp32",
    "init_from": {"path": "runs/one/best.pt", "provenance": STAGE_1},
}


def run_script(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A two-stage checkpoint (random weights) and a real `evaluate --split val --sweep` of it."""
    tmp_path = tmp_path_factory.mktemp("evaluated")
    torch.manual_seed(0)
    net = P2PNet()
    with torch.no_grad():  # a head that keeps some candidates, so the thresholds count differently
        net.classification.output.bias.fill_(0.0)
    weights = save_checkpoint(tmp_path / "best.pt", net, provenance=STAGE_2)
    data = write_blob_folder(tmp_path / "blobs", 6, size=(48, 64), max_count=4)
    out = tmp_path / "eval"
    argv = ["--weights", str(weights), f"synth={data}", "--split", "val", "--val-every", "3"]
    argv += ["--out", str(out), "--worst", "0", "--precision", "fp32", "--no-progress"]
    assert evaluate([*argv, "--sweep", "0.45", "0.5", "0.55"]) == 0
    return weights, out / "summary.json"


def test_packages_fp16_weights_at_the_lowest_mae_threshold_with_the_validation_figures(tmp_path, evaluated):
    weights, summary_path = evaluated
    summary = json.loads(summary_path.read_text())
    out = tmp_path / "shipped.pt"
    done = run_script(weights, "--evaluation", summary_path, "--out", out)
    assert done.returncode == 0, done.stderr
    chosen = summary["threshold_lowest_mae"]
    payload = read_checkpoint_file(out)
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())
    net, meta = load_checkpoint(out)
    original, _ = load_checkpoint(weights)
    for name, tensor in original.state_dict().items():
        torch.testing.assert_close(net.state_dict()[name], tensor.half().float())
    assert meta.default_threshold == float(chosen)
    packaged = meta.provenance["packaged"]
    swept = summary["threshold_sweep"][chosen]
    assert packaged["validation"]["synth"]["mae"] == swept["synth"]["mae"]
    assert packaged["validation"]["all"]["f1_8px"] == swept["all"]["localization"]["8px"]["f1"]
    assert [s["steps"] for s in packaged["stages"]] == [625, 900]
    assert packaged["total_steps"] == 1525 and packaged["total_wall_time_s"] == 1500.0
    assert packaged["stages"][1]["start"] == "runs/one/best.pt"
    assert meta.provenance["init_from"]["provenance"] == STAGE_1  # the run's own provenance is kept


def test_refuses_weights_that_are_not_better_on_every_dataset(tmp_path, evaluated):
    weights, summary_path = evaluated
    summary = json.loads(summary_path.read_text())
    out = tmp_path / "shipped.pt"
    # against itself at its own threshold: equal, not better -> refused, nothing written
    args = ("--evaluation", summary_path, "--threshold", "0.5", "--out", out)
    done = run_script(weights, *args, "--must-beat", summary_path)
    assert done.returncode == 1 and "not better on synth" in done.stderr and not out.exists()
    # against weights whose error is one count higher everywhere: packaged
    worse = json.loads(summary_path.read_text())
    for entry in worse["datasets"].values():
        entry["mae"] += 1.0
    old = tmp_path / "old.json"
    old.write_text(json.dumps(worse))
    done = run_script(weights, *args, "--must-beat", old)
    assert done.returncode == 0, done.stderr
    assert f"synth: MAE {worse['datasets']['synth']['mae']:.2f} -> " in done.stdout and out.exists()
    assert load_checkpoint(out)[1].default_threshold == 0.5
    assert load_checkpoint(out)[1].provenance["packaged"]["threshold_rule"] == "chosen by hand (--threshold)"
    why = "the config's threshold"
    done = run_script(weights, *args, "--threshold-reason", why, "--note", "data shrunk", "--must-beat", old)
    assert done.returncode == 0, done.stderr
    packaged = load_checkpoint(out)[1].provenance["packaged"]
    assert packaged["threshold_rule"] == why and packaged["note"] == "data shrunk"
    done = run_script(
        weights, "--evaluation", summary_path, "--threshold-reason", why, "--out", tmp_path / "y.pt"
    )
    assert done.returncode == 2 and "--threshold-reason needs --threshold" in done.stderr
    assert summary["datasets"]["synth"]["mae"] + 1.0 == worse["datasets"]["synth"]["mae"]


def test_refuses_an_evaluation_of_other_weights_or_of_shrunk_images(tmp_path, evaluated):
    weights, summary_path = evaluated
    other = save_checkpoint(tmp_path / "other.pt", P2PNet())
    done = run_script(other, "--evaluation", summary_path, "--out", tmp_path / "x.pt")
    assert done.returncode != 0 and "not " in done.stderr and str(other) in done.stderr
    shrunk = json.loads(summary_path.read_text())
    shrunk["longest_side"] = 768
    (tmp_path / "shrunk.json").write_text(json.dumps(shrunk))
    done = run_script(weights, "--evaluation", tmp_path / "shrunk.json", "--out", tmp_path / "x.pt")
    assert done.returncode != 0 and "full resolution" in done.stderr
    done = run_script(weights, "--evaluation", summary_path, "--threshold", "0.7", "--out", tmp_path / "x.pt")
    assert done.returncode != 0 and "0.7 was not evaluated" in done.stderr
    assert not (tmp_path / "x.pt").exists()
