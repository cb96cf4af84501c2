"""Reading torch.save files without torch (model/ptfile.py): torch.load's values, and never any code."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from crowdwatch.errors import CheckpointError
from crowdwatch.model.ptfile import read_torch_file
from crowdwatch.weightsfile import PACKAGED_WEIGHTS

PWNED = Path("/tmp/crowdwatch-ptfile-pwned")


def test_the_packaged_weights_read_as_torch_loads_them() -> None:
    want = torch.load(PACKAGED_WEIGHTS, weights_only=True)
    got = read_torch_file(PACKAGED_WEIGHTS)
    assert {k: v for k, v in got.items() if k != "state_dict"} == {
        k: v for k, v in want.items() if k != "state_dict"
    }
    assert list(got["state_dict"]) == list(want["state_dict"])
    for key, tensor in want["state_dict"].items():
        assert got["state_dict"][key].dtype == np.float16
        np.testing.assert_array_equal(got["state_dict"][key], tensor.numpy())


def test_views_dtypes_and_shared_storages(tmp_path: Path) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = {
        "transposed": base.t(),  # strides (1, 6)
        "offset_view": base[1:, 2:],  # a storage offset, shared with "transposed"
        "bfloat16": base.to(torch.bfloat16),
        "float64": base.double(),
        "int64": torch.tensor([1, -2, 3]),
        "bool": torch.tensor([True, False]),
        "uint8": torch.tensor([0, 255], dtype=torch.uint8),
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(3.5),
    }
    torch.save({"nested": {"list": [tensors["int64"], 1.5, "text", None]}, **tensors}, tmp_path / "t.pt")
    got = read_torch_file(tmp_path / "t.pt")
    for name, tensor in tensors.items():
        want = tensor.float().numpy() if name == "bfloat16" else tensor.numpy()
        assert got[name].shape == want.shape and got[name].dtype == want.dtype, name
        np.testing.assert_array_equal(got[name], want)
        assert got[name].flags.writeable  # a copy, not a view of the file's bytes
    np.testing.assert_array_equal(got["nested"]["list"][0], [1, -2, 3])
    assert got["nested"]["list"][1:] == [1.5, "text", None]


class _Command:
    def __reduce__(self):  # a pickle that runs a shell command when loaded by a plain unpickler
        return (__import__("os").system, (f"touch {PWNED}",))


def _zip_with_pickle(path: Path, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/byteorder", "little")
    return path


@pytest.mark.parametrize(
    "payload",
    [
        {"x": _Command()},  # os.system
        {"x": eval},  # builtins.eval, by reference
        {"x": torch.nn.Linear(2, 2)},  # a torch class: torch.load(weights_only=True) refuses it too
        {"x": Path("/etc/passwd")},  # a harmless class is still a class
    ],
    ids=["system", "eval", "module", "path"],
)
def test_anything_but_tensors_and_plain_data_is_refused_unrun(tmp_path: Path, payload: dict) -> None:
    path = tmp_path / "evil.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="refusing to load it") as info:
        read_torch_file(path)
    assert info.value.reason == "unsafe" and info.value.exit_code == 2
    assert not PWNED.exists()


def test_a_crafted_persistent_id_is_refused(tmp_path: Path) -> None:
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            return ("module", "os") if obj == "marker" else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"x": "marker"})
    path = _zip_with_pickle(tmp_path / "pid.pt", buffer.getvalue())
    with pytest.raises(CheckpointError, match="refusing to load it"):
        read_torch_file(path)


def test_a_tensor_reaching_past_its_storage_is_corrupt(tmp_path: Path) -> None:
    torch.save({"t": torch.arange(6, dtype=torch.float32)}, tmp_path / "t.pt")
    with zipfile.ZipFile(tmp_path / "t.pt") as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    key = next(name for name in files if "/data/" in name)
    files[key] = files[key][:8]  # two of six floats left
    with zipfile.ZipFile(tmp_path / "short.pt", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    with pytest.raises(CheckpointError, match="truncated or corrupt") as info:
        read_torch_file(tmp_path / "short.pt")
    assert info.value.reason == "corrupt"
