"""Session-wide exported models (ONNX, OpenVINO fp32 IR) of the packaged weights, shared by the tests of
the export and of the OpenVINO backend; skipped with the reason when the extra or the weights are absent."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HAS_EXTRA = all(importlib.util.find_spec(name) for name in ("openvino", "nncf", "onnx"))
needs_extra = pytest.mark.skipif(
    not HAS_EXTRA, reason="needs the crowdwatch[openvino] extra (openvino, nncf, onnx); not installed"
)


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"onnx": ..., "xml": ..., "pt": ...}: the packaged weights, exported once per session."""
    if not HAS_EXTRA:
        pytest.skip("needs the crowdwatch[openvino] extra (openvino, nncf, onnx); not installed")
    from crowdwatch.model.checkpoint import load_checkpoint, packaged_weights
    from crowdwatch.model.export import export_metadata, export_onnx, onnx_to_openvino, save_ir

    weights = packaged_weights()
    if weights is None:
        pytest.skip("this checkout ships no packaged weights")
    out = tmp_path_factory.mktemp("exported")
    net, meta = load_checkpoint(weights)
    onnx_path = export_onnx(net, meta, out / "p2pnet.onnx")
    # What export_model(fmt="openvino") does, from the ONNX file above instead of a second export.
    metadata = export_metadata(meta, format="openvino", precision="fp32")
    xml_path = save_ir(onnx_to_openvino(onnx_path), out / "p2pnet.xml", metadata)
    return {"onnx": onnx_path, "xml": xml_path, "pt": weights}
