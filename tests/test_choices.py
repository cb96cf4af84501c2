"""The choices a user names are declared once (crowdwatch/choices.py; the exported suffixes in
crowdwatch/weightsfile.py), and nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

import crowdwatch
from crowdwatch.choices import BACKENDS, PRECISIONS
from crowdwatch.weightsfile import EXPORTED_SUFFIXES

PACKAGE = Path(crowdwatch.__file__).parent

#: A second declaration of each choice: the names side by side, quoted, in any bracket or Literal.
COPIES = {
    "backends": (re.compile(r"""["']torch["']\s*,\s*["']openvino["']"""), "choices.py"),
    "precisions": (re.compile(r"""["']fp32["']\s*,\s*["']bf16["']\s*,\s*["']fp16["']"""), "choices.py"),
    "exported suffixes": (re.compile(r"""["']\.xml["']\s*,\s*["']\.onnx["']"""), "weightsfile.py"),
}


def test_each_choice_is_declared_in_one_place() -> None:
    copies = [
        f"{path.relative_to(PACKAGE)}: {what}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for what, (pattern, home) in COPIES.items()
        if path.name != home and pattern.search(path.read_text())
    ]
    assert copies == [], "import these from their one home instead"


def test_the_config_schema_accepts_exactly_the_declared_choices() -> None:
    from crowdwatch.config.schema import ModelSettings

    schema = ModelSettings.model_json_schema()["properties"]
    assert tuple(schema["backend"]["enum"]) == BACKENDS
    assert tuple(schema["precision"]["enum"]) == PRECISIONS
    assert EXPORTED_SUFFIXES == (".xml", ".onnx")
