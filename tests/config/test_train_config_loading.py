"""The training config is read and reported by the site config's loader: duplicate keys are errors,
error lines name key paths the same way (``data.datasets[0].wieght``), and it is a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config_files import write_config

from crowdwatch.config import ConfigError
from crowdwatch.errors import UsageError
from crowdwatch.train.config import load_train_config


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (
            "data: {datasets: [{path: x}]}\ntrain:\n  steps: 1\n  steps: 2\n",
            "",
            "line 4, column 3: duplicate key",
        ),
        (
            "data: {datasets: [{path: x, wieght: 2}]}\ntrain: {steps: 1}\n",
            "data.datasets[0].wieght",
            "unknown key",
        ),
        ("data: {datasets: [{path: x}]}\n", "train", "required key is missing"),
        ("- just a list\n", "", "expected a mapping"),
        # strict types, as in the site config: a YAML boolean or string is not a number
        ("data: {datasets: [{path: x}]}\ntrain: {steps: 1, lr: true}\n", "train.lr", "valid number"),
        ("data: {datasets: [{path: x}]}\ntrain: {steps: '10'}\n", "train.steps", "valid integer"),
        ("data: {datasets: [{path: x}]}\ntrain: {steps: 1, flip: 1}\n", "train.flip", "valid boolean"),
        ("data: {datasets: [{path: x}]}\ntrain: {steps: 1, lr: .nan}\n", "train.lr", "finite number"),
        # one name rule with evaluate: two folders called x would merge in every table
        ("data: {datasets: [{path: x}, {path: y/x}]}\ntrain: {steps: 1}\n", "data", "'x' names more"),
    ],
    ids=[
        "duplicate-key",
        "unknown-key",
        "missing-section",
        "not-a-mapping",
        "bool-for-number",
        "string-for-int",
        "int-for-bool",
        "nan",
        "same-dataset-name",
    ],
)
def test_train_config_errors_read_like_site_config_errors(
    text: str, key: str, expected: str, tmp_path: Path
) -> None:
    path = write_config(tmp_path, text, "train.yaml")
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    assert info.value.path == path
    assert any(k == key and expected in message for k, message in info.value.errors), info.value.errors
    assert str(info.value).startswith(f"{path}: invalid configuration (1 error):\n  {key or '<top level>'}: ")


def test_relative_paths_are_taken_from_the_config_folder(tmp_path: Path) -> None:
    text = (
        "data: {datasets: [{path: a}]}\nmodel: {init_from: w.pt, backbone_init: kaiming}\ntrain: {steps: 1}\n"
    )
    (tmp_path / "sub").mkdir()
    config = load_train_config(write_config(tmp_path / "sub", text, "train.yaml"))
    assert config.data.datasets[0].path == (tmp_path / "sub" / "a").resolve()
    assert config.model.init_from == str((tmp_path / "sub" / "w.pt").resolve())
    assert config.model.backbone_init == "kaiming"  # a keyword, not a path
