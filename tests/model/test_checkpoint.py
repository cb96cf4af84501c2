"""Checkpoint format: round trip, metadata, and a clear error for each kind of bad file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from crowdwatch.errors import BackboneWeightsMissing, CheckpointError
from crowdwatch.model import P2PNet, load_checkpoint, save_checkpoint
from crowdwatch.model.backbone import imagenet_cache_path, load_imagenet_backbone
from crowdwatch.model.checkpoint import FORMAT_VERSION
from crowdwatch.model.ovgraph import read_checkpoint_arrays


@pytest.fixture(scope="module")
def net() -> P2PNet:
    torch.manual_seed(3)
    return P2PNet(num_candidates=4).eval()


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, net: P2PNet) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "good.pt"
    save_checkpoint(path, net, threshold=0.42, provenance={"data": ["synthetic"], "steps": 7})
    return path


def test_round_trip_keeps_weights_and_metadata(good: Path, net: P2PNet) -> None:
    loaded, meta = load_checkpoint(good)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    assert meta.num_candidates == 4 and meta.default_threshold == 0.42
    assert meta.provenance["data"] == ["synthetic"] and meta.provenance["steps"] == 7
    assert "saved_at" in meta.provenance and meta.format_version == FORMAT_VERSION
    assert meta.trained
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x)["points"], net(x)["points"])


def test_half_checkpoint_is_smaller_and_loads_as_float32(tmp_path: Path, good: Path, net: P2PNet) -> None:
    half = save_checkpoint(tmp_path / "half.pt", net, half=True)
    assert half.stat().st_size < 0.6 * good.stat().st_size
    loaded, _ = load_checkpoint(half)
    weight = loaded.state_dict()["backbone.0.weight"]
    assert weight.dtype == torch.float32
    torch.testing.assert_close(weight, net.state_dict()["backbone.0.weight"], atol=1e-3, rtol=1e-3)


def test_other_n_round_trips(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "n2.pt", P2PNet(num_candidates=2))
    loaded, meta = load_checkpoint(path)
    assert loaded.num_candidates == 2 and meta.num_candidates == 2


class _Evil:
    def __reduce__(self):  # runs a command if unpickled without weights_only
        return (os.system, ("touch /tmp/crowdwatch-pwned",))


def _payload(good: Path) -> dict:
    return torch.load(good, weights_only=True)


def _bad_files(tmp: Path, good: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (file, expected reason, a phrase the message must contain)."""
    data = good.read_bytes()
    cases: dict[str, tuple[Path, str, str]] = {}

    def put(name: str, reason: str, phrase: str, content: bytes | None = None, obj=None) -> None:
        path = tmp / f"{name}.pt"
        if content is not None:
            path.write_bytes(content)
        else:
            torch.save(obj, path)
        cases[name] = (path, reason, phrase)

    cases["missing"] = (tmp / "nope.pt", "missing", "no such file")
    put("empty", "corrupt", "empty", b"")
    put("truncated", "corrupt", "truncated or corrupt", data[: len(data) // 2])
    put("garbage", "corrupt", "truncated or corrupt", np.random.default_rng(0).bytes(4096))
    put("evil", "unsafe", "refusing to load", obj={"format": "crowdwatch-p2pnet", "x": _Evil()})
    resnet_like = {"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}
    put("other_arch", "architecture", "not a crowdwatch P2PNet checkpoint", obj=resnet_like)
    published = {"model": {"backbone.body1.0.weight": torch.zeros(64, 3, 3, 3)}}
    put("published", "architecture", "crowdwatch convert", obj=published)
    p = _payload(good)
    p["arch"] = dict(p["arch"], backbone="resnet50")
    put("other_backbone", "architecture", "another architecture", obj=p)
    p = _payload(good)
    p["arch"] = dict(p["arch"], num_candidates=2)  # metadata says N=2, tensors are for N=4
    put("wrong_n", "wrong_n", "wrong N", obj=p)
    p = _payload(good)
    del p["state_dict"]["neck.smooth.weight"], p["state_dict"]["regression.body.0.bias"]
    put("missing_keys", "keys", "missing keys: neck.smooth.weight, regression.body.0.bias", obj=p)
    p = _payload(good)
    p["state_dict"]["head.extra.weight"] = torch.zeros(3)
    put("unexpected_keys", "keys", "unexpected keys: head.extra.weight", obj=p)
    p = _payload(good)
    p["format_version"] = FORMAT_VERSION + 1
    put("newer", "version", "newer crowdwatch", obj=p)
    p = _payload(good)
    p["normalization"] = dict(p["normalization"], std=[0.5, 0.5])  # two channels for an RGB network
    put("bad_normalization", "corrupt", "invalid normalization std", obj=p)
    return cases


BAD_CASES = [
    "missing",
    "empty",
    "truncated",
    "garbage",
    "evil",
    "other_arch",
    "published",
    "other_backbone",
    "wrong_n",
    "missing_keys",
    "unexpected_keys",
    "newer",
    "bad_normalization",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_checkpoint_gives_specific_error(tmp_path: Path, good: Path, case: str) -> None:
    path, reason, phrase = _bad_files(tmp_path, good)[case]
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert info.value.reason == reason
    assert phrase in str(info.value)
    assert str(path) in str(info.value)
    assert not Path("/tmp/crowdwatch-pwned").exists()


@pytest.mark.parametrize("case", BAD_CASES)
def test_the_torch_free_reader_gives_the_same_error(tmp_path: Path, good: Path, case: str) -> None:
    # What the openvino backend reads a checkpoint with (no torch): the same rules, reasons and phrases.
    path, reason, phrase = _bad_files(tmp_path, good)[case]
    with pytest.raises(CheckpointError) as info:
        read_checkpoint_arrays(path)
    assert info.value.reason == reason
    assert phrase in str(info.value)
    assert str(path) in str(info.value)
    assert not Path("/tmp/crowdwatch-pwned").exists()


@pytest.mark.parametrize("header", [b"", b"\x80\x02", b"PK\x03\x04"], ids=["raw", "pickle", "zip"])
def test_random_bytes_are_always_reported_as_corrupt(tmp_path: Path, header: bytes) -> None:
    # Random bytes after a pickle header drive torch's unpickler into IndexError, KeyError and the
    # like (CI once hit "pop from empty list"); every one must become the same corrupt-file error.
    for seed in range(60):
        path = tmp_path / f"garbage{seed}.pt"
        body = np.random.default_rng(seed).bytes(2048)
        path.write_bytes(header + body[len(header) :])
        for reader in (load_checkpoint, read_checkpoint_arrays):  # with torch, and without
            with pytest.raises(CheckpointError) as info:
                reader(path)
            assert info.value.reason == "corrupt", (seed, reader.__name__, str(info.value))
            assert "truncated or corrupt" in str(info.value)


def test_wrong_n_asked_for_is_refused(good: Path) -> None:
    with pytest.raises(CheckpointError, match="wrong N"):
        load_checkpoint(good, num_candidates=8)


@pytest.mark.parametrize("case", ["truncated", "wrong_n", "missing_keys", "evil"])
def test_cli_reports_bad_checkpoint_without_traceback(
    tmp_path: Path, good: Path, case: str, python: str, cli_env: dict
) -> None:
    path, _, phrase = _bad_files(tmp_path, good)[case]
    image = tmp_path / "img.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    proc = subprocess.run(
        [python, "-m", "crowdwatch", "count", str(image), "--weights", str(path)],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"crowdwatch: error: {path}" in proc.stderr and phrase in proc.stderr


def test_imagenet_init_from_a_local_cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models import vgg16

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = imagenet_cache_path()
    assert cache.parent == tmp_path / "hub" / "checkpoints"
    with pytest.raises(BackboneWeightsMissing) as info:
        load_imagenet_backbone(P2PNet().backbone)
    assert str(cache) in str(info.value) and cache.name in str(info.value)
    # A stand-in for the torchvision file: same layout, random values.
    torch.manual_seed(1)
    reference = vgg16(weights=None)
    cache.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cache)
    net = P2PNet()
    assert load_imagenet_backbone(net.backbone) == cache
    torch.testing.assert_close(net.backbone[28].weight, reference.features[28].weight)
    torch.testing.assert_close(net.backbone[0].bias, reference.features[0].bias)
