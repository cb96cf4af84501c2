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


def test_machine_description_names_the_cpu_model_from_cpuinfo(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: Acme\nmodel name\t: Acme Zen 9 9999X\nflags\t: fpu\n")
    described = precision.machine_description(torch.device("cpu"), cpuinfo)
    assert described.startswith("Acme Zen 9 9999X, ") and described.endswith(" cores")


def test_machine_description_without_cpuinfo_falls_back_to_the_platform(tmp_path) -> None:
    described = precision.machine_description(torch.device("cpu"), tmp_path / "missing")
    assert described.endswith(" cores") and not described.startswith(",")
