"""What ``auto`` precision means on a CPU, for inference and for training: bf16 only where it is native."""

from __future__ import annotations

import pytest
import torch

from crowdwatch.errors import UsageError
from crowdwatch.model import precision


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_the_cpu_is_bf16_only_where_native(
    monkeypatch: pytest.MonkeyPatch, native: bool, expected: str
) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert precision.resolve_inference_precision("auto", cpu) == expected
    assert precision.resolve_training_precision("auto", cpu) == expected


def test_explicit_choices_are_kept_and_fp16_training_needs_cuda() -> None:
    cpu = torch.device("cpu")
    assert precision.resolve_training_precision("bf16", cpu) == "bf16"
    assert precision.resolve_training_precision("fp32", cpu) == "fp32"
    with pytest.raises(UsageError, match="only supported on CUDA"):
        precision.resolve_training_precision("fp16", cpu)
