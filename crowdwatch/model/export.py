"""Exporting P2PNet for other runtimes: ONNX, OpenVINO IR (fp32 weights) and OpenVINO int8 (NNCF).

The exported graph is the network alone, from the normalised padded batch to candidate logits and
points (``images`` (B, 3, H, W) float32 -> ``logits`` (B, M), ``points`` (B, M, 2)); batch, height and
width are dynamic, height and width multiples of 16 (C5 at stride 16 is upsampled x2 and added to C4).
Preprocessing and decoding stay in :class:`~crowdwatch.model.predictor.Predictor`.

Every exported model carries the checkpoint's metadata as one JSON string under the key ``crowdwatch``
(ONNX ``metadata_props``; IR ``rt_info``): the checkpoint's own keys (:func:`meta_payload`: N, stride,
regression scale, normalisation, threshold, provenance) plus ``export`` (format, precision, opset, and
for int8 the calibration set, the layers kept in higher precision and the measured count drift).
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crowdwatch.errors import UsageError
from crowdwatch.model.anchors import STRIDE
from crowdwatch.model.backends import (
    INPUT_NAME,
    METADATA_KEY,
    OUTPUT_NAMES,
    import_openvino,
)
from crowdwatch.model.checkpoint import CheckpointMeta, meta_payload
from crowdwatch.model.p2pnet import C4_INDEX, P2PNet

logger = logging.getLogger(__name__)

#: ONNX opset of the exported file: recent enough for current ONNX Runtime, TensorRT and OpenVINO.
ONNX_OPSET = 18
#: Layers NNCF leaves in floating point, as regular expressions over the graph's node names: the first
#: convolution (it sees raw normalised pixels, whose range int8 resolves poorly) and the heads' output
#: convolutions (their outputs are the logits thresholded at 0.5 and the offsets scaled x100: an int8
#: step there moves counts and points directly).
KEEP_FLOAT = (r".*backbone\.0/Conv.*", r".*regression/output/Conv.*", r".*classification/output/Conv.*")
#: Export size of the traced example (any multiple of 16; the axes are dynamic).
_EXAMPLE_HW = (64, 96)


class ExportableP2PNet(nn.Module):
    """P2PNet with the cell centres computed from the feature map's shape in graph ops, so that the
    exported graph works at any input size (the torch module caches them per size, as constants)."""

    def __init__(self, net: P2PNet) -> None:
        super().__init__()
        self.net = net.eval()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, 3, H, W) -> logits (B, M), points (B, M, 2), M = H/8 * W/8 * N (as P2PNet)."""
        net = self.net
        batch = images.shape[0]
        c4 = net.backbone[: C4_INDEX + 1](images)
        c5 = net.backbone[C4_INDEX + 1 :](c4)
        features = net.neck(c4, c5)
        feat_h, feat_w = features.shape[-2], features.shape[-1]
        n = net.num_candidates
        # (B, 2N, h, w) -> (B, h*w*N, 2) and (B, N, h, w) -> (B, h*w*N), as in P2PNet.forward.
        offsets = net.regression(features).permute(0, 2, 3, 1).reshape(batch, -1, 2) * net.regression_scale
        logits = net.classification(features).permute(0, 2, 3, 1).reshape(batch, -1)
        ys = (torch.arange(feat_h, dtype=torch.float32) + 0.5) * STRIDE
        xs = (torch.arange(feat_w, dtype=torch.float32) + 0.5) * STRIDE
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        # (h, w, 2) -> one centre per candidate, (1, h*w*N, 2), cells row-major then candidate k.
        centres = torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 1, 2).expand(-1, n, 2).reshape(1, -1, 2)
        return logits, centres + offsets


def export_metadata(meta: CheckpointMeta, **export: Any) -> dict[str, Any]:
    """The metadata every exported model carries: the checkpoint's, plus ``export``."""
    return {**meta_payload(meta), "export": export}


def export_onnx(net: P2PNet, meta: CheckpointMeta, path: Path, *, opset: int = ONNX_OPSET) -> Path:
    """Write ``net`` as ONNX with dynamic batch, height and width, the metadata in ``metadata_props``,
    and check it with ``onnx.checker``."""
    onnx = _import("onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    module = ExportableP2PNet(net.float().cpu())
    example = torch.zeros(1, 3, *_EXAMPLE_HW)
    with warnings.catch_warnings():
        # The TorchScript exporter is the one that needs no onnxscript; its deprecation notice and
        # tracer warnings about shape arithmetic (exported as graph ops, as intended) are noise here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={
                INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                OUTPUT_NAMES[0]: {0: "batch", 1: "candidates"},
                OUTPUT_NAMES[1]: {0: "batch", 1: "candidates"},
            },
        )
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(export_metadata(meta, format="onnx", precision="fp32", opset=opset))
    proto.producer_name = "crowdwatch"
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return path


def onnx_to_openvino(onnx_path: Path) -> Any:
    """The ONNX file as an OpenVINO model (fp32 weights)."""
    ov = import_openvino()
    return ov.convert_model(str(onnx_path))


def save_ir(model: Any, xml_path: Path, metadata: dict[str, Any]) -> Path:
    """Save an OpenVINO model as IR (``.xml`` + ``.bin``) with ``metadata`` in its ``rt_info``.

    Weights stay as they are (``compress_to_fp16=False``): fp32, or int8 for a quantized model.
    """
    ov = import_openvino()
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    model.set_rt_info(json.dumps(metadata), [METADATA_KEY])
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    return xml_path


def quantize_int8(
    model: Any, batches: Sequence[np.ndarray], *, keep_float: Sequence[str] = KEEP_FLOAT
) -> Any:
    """NNCF post-training quantization of ``model`` on ``batches`` (normalised, padded (1, 3, H, W)).

    Activation ranges come from every calibration batch; the layers matching ``keep_float`` stay in
    floating point. Weights are quantized per channel, symmetric; activations with the MIXED preset
    (asymmetric), which suits the ReLU-free neck and heads' inputs.
    """
    nncf = _import("nncf")
    if not batches:
        raise UsageError("int8 calibration needs at least one image")
    dataset = nncf.Dataset(list(batches))
    return nncf.quantize(
        model,
        dataset,
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(batches),
        ignored_scope=nncf.IgnoredScope(patterns=list(keep_float), validate=False),
    )


def count_drift(reference: Sequence[int], quantized: Sequence[int]) -> dict[str, float]:
    """How far int8 counts move from the fp32 model's on the same images."""
    ref = np.asarray(reference, dtype=np.float64)
    got = np.asarray(quantized, dtype=np.float64)
    mean = float(ref.mean()) if ref.size else 0.0
    mae = float(np.abs(got - ref).mean()) if ref.size else 0.0
    return {
        "images": int(ref.size),
        "mean_count_fp32": round(mean, 3),
        "count_mae_vs_fp32": round(mae, 3),
        "count_mae_percent_of_mean": round(100.0 * mae / mean, 3) if mean else 0.0,
        "max_abs_count_diff": float(np.abs(got - ref).max()) if ref.size else 0.0,
    }


def export_model(
    net: P2PNet,
    meta: CheckpointMeta,
    out_dir: Path,
    *,
    fmt: str,
    name: str = "p2pnet",
    calibration: Sequence[np.ndarray] | None = None,
    calibration_info: dict[str, Any] | None = None,
    count_fn: Callable[[Path, Sequence[np.ndarray]], list[int]] | None = None,
) -> Path:
    """Export ``net`` to ``out_dir``; returns the model file (``.onnx`` or ``.xml``).

    fmt ``onnx``: the ONNX file. ``openvino``: the fp32 IR; with ``calibration`` (BGR images), also
    quantized to int8 (``<name>_int8.xml``), and ``count_fn(model_path, images) -> counts`` measures the
    int8 model's count drift against the fp32 IR on those images, recorded in its metadata.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        return export_onnx(net, meta, out_dir / f"{name}.onnx")
    if fmt != "openvino":
        raise UsageError(f"format must be onnx or openvino, but got {fmt!r}")
    with tempfile.TemporaryDirectory(prefix="crowdwatch-export.") as tmp:
        # Saved while the ONNX file still exists: the converted model may read its weights from it.
        model = onnx_to_openvino(export_onnx(net, meta, Path(tmp) / f"{name}.onnx"))
        fp32_xml = save_ir(
            model, out_dir / f"{name}.xml", export_metadata(meta, format="openvino", precision="fp32")
        )
    if calibration is None:
        return fp32_xml
    from crowdwatch.model.preprocess import Preprocessor

    pre = Preprocessor(mean=meta.mean, std=meta.std)
    batches = [pre([image])[0].numpy() for image in calibration]
    logger.info("int8: collecting activation statistics on %d calibration images", len(batches))
    quantized = quantize_int8(onnx_to_openvino_copy(fp32_xml), batches)
    info: dict[str, Any] = {
        "format": "openvino",
        "precision": "int8",
        "method": "NNCF post-training quantization (MIXED preset)",
        "calibration": calibration_info or {"images": len(batches)},
        "kept_in_float": list(KEEP_FLOAT),
    }
    int8_xml = out_dir / f"{name}_int8.xml"
    if count_fn is not None:
        logger.info("int8: measuring the count drift against the fp32 model on the calibration images")
        with tempfile.TemporaryDirectory(prefix="crowdwatch-export.") as tmp:
            trial = save_ir(quantized, Path(tmp) / int8_xml.name, export_metadata(meta, **info))
            drift = count_drift(count_fn(fp32_xml, calibration), count_fn(trial, calibration))
        info["count_drift"] = {**drift, "measured_on": "the calibration images"}
    return save_ir(quantized, int8_xml, export_metadata(meta, **info))


def onnx_to_openvino_copy(xml_path: Path) -> Any:
    """A fresh copy of a saved IR (quantization rewrites the model it is given)."""
    ov = import_openvino()
    return ov.Core().read_model(str(xml_path))


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError as exc:
        raise UsageError(
            f"exporting needs the {name} package ({exc}); install the optional extra: "
            "pip install 'crowdwatch[export]'"
        ) from None
