"""Training runs in chunks: stop-and-resume reproduces one uninterrupted run exactly."""

import csv
from pathlib import Path

import pytest
import torch

from crowdwatch.commands.train import main as train_command
from crowdwatch.data.synthetic import write_blob_folder
from crowdwatch.errors import CheckpointError, ImageTooLarge, UsageError
from crowdwatch.model import P2PNet
from crowdwatch.model.checkpoint import load_checkpoint, save_checkpoint
from crowdwatch.model.precision import machine_description
from crowdwatch.train.config import load_train_config, parse_config
from crowdwatch.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(data, steps=6, **train):
    raw = {
        "seed": 3,
        "data": {"datasets": [{"path": str(data), "name": "blobs"}], "val_every": 4},
        "train": {
            "steps": steps,
            "images_per_step": 2,
            "crops_per_image": 1,
            "crop_size": 32,
            "lr_backbone": 1e-4,
            "workers": 0,
            "checkpoint_every": 2,
            **train,
        },
        "validation": {"every_steps": 3, "longest_side": None},
    }
    return parse_config(raw, data.parent)


def read_log(path):
    with path.open() as f:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv.DictReader(f)]


def test_stop_and_resume_reproduces_uninterrupted_run_exactly(tmp_path):
    data = write_blob_folder(tmp_path / "blobs", 12, size=(48, 48), max_count=6)
    config = tiny_config(data)
    whole = Trainer(config, tmp_path / "whole", resume=False)
    whole_rows = whole.run(progress=False)

    chunked_rows = Trainer(config, tmp_path / "chunks", resume=False).run(max_steps=2, progress=False)
    # Chunk boundaries fall before and after a validation step; one chunk loads data in a worker.
    chunked_rows += Trainer(config, tmp_path / "chunks", resume=True, workers=1).run(
        max_steps=2, progress=False
    )
    last = Trainer(config, tmp_path / "chunks", resume=True)
    chunked_rows += last.run(progress=False)

    assert [r["step"] for r in chunked_rows] == list(range(1, 7))
    assert [r["loss"] for r in chunked_rows] == [r["loss"] for r in whole_rows]
    assert [r["loss_point"] for r in chunked_rows] == [r["loss_point"] for r in whole_rows]
    assert read_log(tmp_path / "chunks" / "log.csv") == read_log(tmp_path / "whole" / "log.csv")
    for key, value in whole.net.state_dict().items():
        assert torch.equal(value, last.net.state_dict()[key]), key
    assert last.best["step"] == whole.best["step"] and last.best["mae"] == whole.best["mae"]


def test_best_checkpoint_loads_with_provenance(tmp_path):
    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    trainer = Trainer(tiny_config(data, steps=3), tmp_path / "run", resume=False)
    trainer.run(progress=False)
    _net, meta = load_checkpoint(tmp_path / "run" / "best.pt")
    prov = meta.provenance
    assert prov["datasets"][0]["name"] == "blobs" and prov["datasets"][0]["val_images_used"] == 2
    assert prov["steps"] == 3 and "mae" in prov["validation"]["blobs"] and "rmse" in prov["validation"]["all"]
    assert prov["backbone_init"].startswith(("imagenet", "kaiming"))
    assert prov["machine"] == machine_description(torch.device("cpu"))


class CountingTrainer(Trainer):
    """The real trainer, counting the steps at which it validates."""

    def run_validation(self):
        self.validated_at = [*getattr(self, "validated_at", []), self.step]
        return super().run_validation()


def test_the_last_step_is_validated_once_even_when_it_is_not_the_best(tmp_path):
    # Stage 4 of issue 9 validated its last step twice (6 minutes on a CPU): the end-of-run check asked
    # whether the last step was the best one, not whether it had been validated.
    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    config = tiny_config(data)
    trainer = CountingTrainer(config, tmp_path / "run", resume=False)
    trainer.best = {"mae": -1.0, "step": 0, "val": None}  # a best no validation can beat
    trainer.run(progress=False)
    assert trainer.validated_at == [3, 6]
    again = CountingTrainer(config, tmp_path / "run", resume=True)
    again.run(progress=False)  # a resume of a finished run validates nothing
    assert getattr(again, "validated_at", []) == []


def test_resume_after_crash_drops_log_rows_past_the_checkpoint(tmp_path):
    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    config = tiny_config(data, checkpoint_every=100)
    Trainer(config, tmp_path / "run", resume=False).run(max_steps=2, progress=False)  # saves at stop
    log = tmp_path / "run" / "log.csv"
    log.write_text(log.read_text() + "3,9,9,9,9,9,9,9,,,,\n")  # a row written after the last save
    Trainer(config, tmp_path / "run", resume=True).run(max_steps=1, progress=False)
    steps = [row["step"] for row in read_log(log)]
    assert steps == ["1", "2", "3"] and read_log(log)[2]["loss"] != "9"


def test_existing_run_needs_resume(tmp_path):
    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    config = tiny_config(data, steps=1)
    Trainer(config, tmp_path / "run", resume=False).run(progress=False)
    with pytest.raises(UsageError, match="--resume"):
        Trainer(config, tmp_path / "run", resume=False)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("data: {datasets: [{path: x}]}\ntrain: {steps: 1, bogus: 2}\n", "train.bogus"),
        ("data: {datasets: []}\ntrain: {steps: 1}\n", "data.datasets"),
        ("data: {datasets: [{path: x}]}\ntrain: {steps: 1, crop_size: 100}\n", "train.crop_size"),
        ("data: {datasets: [{path: x}]}\ntrain: {steps: 1, scale: [1.3, 0.7]}\n", "scale"),
        ("data: {datasets: [{path: x}, {path: y/x}]}\ntrain: {steps: 1}\n", "unique"),
        ("data: [\n", "YAML syntax error"),
    ],
)
def test_config_errors_name_the_key(tmp_path, yaml_text, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(UsageError, match=message):
        load_train_config(path)


def test_example_config_is_valid():
    config = load_train_config(Path(__file__).parents[2] / "configs" / "train_example.yaml")
    assert config.train.lr == 1e-4 and config.train.lr_backbone == 1e-5 and config.train.grad_clip == 0.1


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (Path(__file__).parents[2] / "configs").glob("train_*.yaml"))
)
def test_shipped_train_configs_are_valid(name):
    config = load_train_config(Path(__file__).parents[2] / "configs" / f"{name}.yaml")
    assert config.train.steps > 0 and len(config.data.datasets) >= 2


def write_command_config(tmp_path, *, steps, every_steps):
    """A tiny training YAML on blob images, for tests that go through ``crowdwatch train``."""
    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        f"data: {{datasets: [{{path: {data}}}], val_every: 4}}\n"
        f"train: {{steps: {steps}, images_per_step: 1, crops_per_image: 1, crop_size: 32, workers: 0}}\n"
        f"validation: {{every_steps: {every_steps}, longest_side: null}}\n"
    )
    return cfg


def test_train_command_runs_a_chunk_and_resumes(tmp_path):
    cfg = write_command_config(tmp_path, steps=3, every_steps=2)
    out = tmp_path / "run"
    assert train_command([str(cfg), "--out", str(out), "--max-steps", "2", "--no-progress"]) == 0
    assert train_command([str(cfg), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert [row["step"] for row in read_log(out / "log.csv")] == ["1", "2", "3"]
    assert (out / "best.pt").is_file() and (out / "config.yaml").is_file()


def test_export_last_writes_the_network_of_a_run_stopped_between_validations(tmp_path):
    cfg = write_command_config(tmp_path, steps=6, every_steps=6)
    out = tmp_path / "run"
    with pytest.raises(UsageError, match="holds no run"):
        train_command([str(cfg), "--out", str(out), "--resume", "--export-last", str(tmp_path / "x.pt")])
    assert not (tmp_path / "x.pt").exists()
    assert train_command([str(cfg), "--out", str(out), "--max-steps", "3", "--no-progress"]) == 0
    assert not (out / "best.pt").exists()  # nothing validated yet, so nothing to evaluate but the state
    with pytest.raises(UsageError, match="needs --resume"):
        train_command([str(cfg), "--out", str(out), "--export-last", str(tmp_path / "x.pt")])
    with pytest.raises(UsageError, match="trains nothing"):
        train_command([str(cfg), "--out", str(out), "--resume", "--max-steps", "1", "--export-last", "x.pt"])
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    exported = tmp_path / "step3.pt"
    assert train_command([str(cfg), "--out", str(out), "--resume", "--export-last", str(exported)]) == 0
    net, meta = load_checkpoint(exported)
    for key, value in state["model"].items():
        assert torch.equal(value, net.state_dict()[key]), key
    assert meta.provenance["steps"] == 3 and meta.provenance["validation"] == {}
    half = tmp_path / "step3_fp16.pt"
    args = [str(cfg), "--out", str(out), "--resume", "--export-last", str(half), "--half"]
    assert train_command(args) == 0
    assert half.stat().st_size < 0.6 * exported.stat().st_size
    half_net, _ = load_checkpoint(half)
    for key, value in state["model"].items():
        torch.testing.assert_close(half_net.state_dict()[key], value.half().float(), rtol=0, atol=0)
    with pytest.raises(UsageError, match="only applies to --export-last"):
        train_command([str(cfg), "--out", str(out), "--resume", "--half"])
    # the run itself is untouched: it resumes at step 3 and trains to its end
    assert [row["step"] for row in read_log(out / "log.csv")] == ["1", "2", "3"]
    assert train_command([str(cfg), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert [row["step"] for row in read_log(out / "log.csv")] == [str(i) for i in range(1, 7)]


def test_resume_of_a_run_begun_before_a_config_key_existed(tmp_path):
    # A run's state holds its config as dumped then; a key added to the schema since (at its default)
    # must not refuse the resume. Simulated by removing a key from the saved config.
    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    Trainer(tiny_config(data, steps=2), tmp_path / "run", resume=False).run(max_steps=1, progress=False)
    state_path = tmp_path / "run" / "last.pt"
    state = torch.load(state_path, map_location="cpu", weights_only=False)
    assert "max_pixels" in state["config"]["data"]
    del state["config"]["data"]["max_pixels"]
    torch.save(state, state_path)
    trainer = Trainer(tiny_config(data, steps=2), tmp_path / "run", resume=True)
    assert trainer.step == 1
    # ...but a key the run set otherwise than today's config still refuses it
    state["config"]["data"]["max_pixels"] = 1234
    torch.save(state, state_path)
    with pytest.raises(UsageError, match="another config"):
        Trainer(tiny_config(data, steps=2), tmp_path / "run", resume=True)


def test_resume_with_another_config_is_refused(tmp_path):
    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    Trainer(tiny_config(data, steps=2), tmp_path / "run", resume=False).run(max_steps=1, progress=False)
    with pytest.raises(UsageError, match="another config"):
        Trainer(tiny_config(data, steps=2, lr=3e-4), tmp_path / "run", resume=True)


def test_init_from_checkpoint_starts_from_its_weights_and_records_them(tmp_path):
    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    first = Trainer(tiny_config(data, steps=2), tmp_path / "first", resume=False)
    first.run(progress=False)
    start = tmp_path / "first" / "best.pt"
    raw = tiny_config(data, steps=2).model_dump(mode="json")
    raw["model"]["init_from"] = "first/best.pt"  # relative to the config's folder (tmp_path)
    config = parse_config(raw, tmp_path)
    assert config.model.init_from == str(start)
    tuned = Trainer(config, tmp_path / "tuned", resume=False)
    start_net, _ = load_checkpoint(start)
    for key, value in start_net.state_dict().items():
        assert torch.equal(value, tuned.net.state_dict()[key].cpu()), key
    tuned.run(progress=False)
    _, meta = load_checkpoint(tmp_path / "tuned" / "best.pt")
    assert meta.provenance["init_from"]["path"] == str(start)
    assert meta.provenance["init_from"]["provenance"]["steps"] == 2
    assert "backbone_init" not in meta.provenance


def test_init_from_a_bad_checkpoint_is_a_clear_error(tmp_path):
    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    raw = tiny_config(data).model_dump(mode="json")
    raw["model"]["init_from"] = str(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        Trainer(parse_config(raw, tmp_path), tmp_path / "run", resume=False)
    other = tmp_path / "n8.pt"
    save_checkpoint(other, P2PNet(num_candidates=8))
    raw["model"]["init_from"] = str(other)
    with pytest.raises(CheckpointError, match="wrong N"):
        Trainer(parse_config(raw, tmp_path), tmp_path / "run2", resume=False)


def test_init_from_default_uses_the_packaged_weights(tmp_path):
    from crowdwatch.model.checkpoint import DEFAULT_WEIGHTS

    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    raw = tiny_config(data).model_dump(mode="json")
    raw["model"]["init_from"] = "default"
    trainer = Trainer(parse_config(raw, tmp_path), tmp_path / "run", resume=False)
    packaged, _ = load_checkpoint(DEFAULT_WEIGHTS)
    key = "regression.body.0.weight"
    assert torch.equal(trainer.net.state_dict()[key].cpu(), packaged.state_dict()[key])
    assert trainer.init["path"] == str(DEFAULT_WEIGHTS)


def test_an_image_over_max_pixels_stops_the_run_before_it_starts(tmp_path):
    data = write_blob_folder(tmp_path / "blobs", 8, size=(48, 48), max_count=4)
    config = tiny_config(data, steps=1)
    config = config.model_copy(update={"data": config.data.model_copy(update={"max_pixels": 48 * 48 - 1})})
    with pytest.raises(ImageTooLarge, match="48x48 = 2,304 pixels is over the pixel cap of 2,303"):
        Trainer(config, tmp_path / "run", resume=False)
    assert not (tmp_path / "run" / "log.csv").exists()


def flat_parameters(net: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten() for p in net.parameters()])


def test_channels_last_trains_the_same_network_as_nchw(tmp_path):
    """train.channels_last changes the memory layout only: from the same seed, both layouts train the
    same network, and an exact resume still holds in channels_last.

    The two layouts run different convolution kernels, which sum in different orders, so nothing is
    compared bit for bit across layouts. The bounds, and why they hold on any CPU:
    - Step 1's loss comes from the same initial weights through the forward pass alone. Float32
      summation in another order errs by about sqrt(K) * 6e-8 relative per layer (K <= 4608 terms for a
      3x3x512 kernel: 4e-6), so under 1e-4 over the network's 20 layers even if every layer's error had
      the same sign. Measured: equal on Zen 3; on Zen 4 the losses of steps 1-3 agreed within 1e-4.
    - After 4 steps, the distance between the two networks' parameters is compared with how far training
      moved them. Rounding differences grow through Adam (a gradient near zero can flip its update's
      sign) and the one-to-one matching (a near tie can pair another proposal), so later losses may
      differ by more than rounding: 2.5e-4 relative at step 4 on Zen 4. In parameter space that is
      still tiny: 6e-6 of the distance moved on Zen 3. A layout bug (weights read in another order)
      changes every forward output at once and moves the networks apart by the order of the training
      step itself, a ratio near 1. The bound, 1e-2, sits over 1000x above the measured rounding and
      100x below a real difference.
    """
    data = write_blob_folder(tmp_path / "blobs", 12, size=(48, 48), max_count=6)
    reference = Trainer(tiny_config(data, steps=4), tmp_path / "nchw", resume=False)
    start = flat_parameters(reference.net)
    nchw = reference.run(progress=False)
    config = tiny_config(data, steps=4, channels_last=True)
    trainer = Trainer(config, tmp_path / "nhwc", resume=False)
    assert torch.equal(flat_parameters(trainer.net), start)  # the same seed, the same initial network
    nhwc = trainer.run(max_steps=2, progress=False)
    conv = next(m for m in trainer.net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()  # really NHWC, not a 1x1 kernel that is both
    resumed = Trainer(config, tmp_path / "nhwc", resume=True)
    nhwc += resumed.run(progress=False)
    assert [r["step"] for r in nhwc] == [1, 2, 3, 4]
    assert nchw[0]["loss"] == pytest.approx(nhwc[0]["loss"], rel=1e-4)
    moved = (flat_parameters(reference.net) - start).norm()
    apart = (flat_parameters(resumed.net) - flat_parameters(reference.net)).norm()
    assert moved > 0 and apart <= 1e-2 * moved, f"networks {apart:.3g} apart after moving {moved:.3g}"
    # within one layout the kernels are the same, so a resumed run equals an uninterrupted one exactly
    whole = Trainer(config, tmp_path / "nhwc_whole", resume=False).run(progress=False)
    assert [r["loss"] for r in whole] == [r["loss"] for r in nhwc]


def test_a_run_without_validation_trains_on_every_image_and_says_so(tmp_path):
    """val_every: 0 (e.g. a shrunk training split alone on a GPU machine): no image is held out, nothing
    is validated, and the exported provenance does not claim a split."""
    data = write_blob_folder(tmp_path / "blobs", 6, size=(48, 48), max_count=4)
    raw = {
        "data": {"datasets": [{"path": str(data)}], "val_every": 0},
        "train": {"steps": 2, "images_per_step": 1, "crops_per_image": 1, "crop_size": 32, "workers": 0},
        "validation": {"every_steps": 1, "longest_side": None},
    }
    trainer = Trainer(parse_config(raw, tmp_path), tmp_path / "run", resume=False)
    assert len(trainer.train_items[0]) == 6 and trainer.val_items == []
    trainer.run(progress=False)
    assert not (tmp_path / "run" / "best.pt").exists()
    trainer.export(tmp_path / "last.pt", {})
    provenance = load_checkpoint(tmp_path / "last.pt")[1].provenance
    assert provenance["validation_split"].startswith("none")
    assert provenance["datasets"][0]["train_images"] == 6
