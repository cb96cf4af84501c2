"""P2PNet as an OpenVINO graph, built from a crowdwatch checkpoint without torch.

The openvino backend runs a ``.pt`` checkpoint (the packaged weights, or any crowdwatch checkpoint)
this way: :func:`read_checkpoint_arrays` reads it with the restricted reader of
:mod:`crowdwatch.model.ptfile` and checks it with the torch loader's own rules
(:mod:`crowdwatch.model.meta`), and :func:`build_model` lays out the same network as
:class:`~crowdwatch.model.p2pnet.P2PNet` in OpenVINO ops, with the same input and outputs as a model
from ``crowdwatch export`` (``images`` (B, 3, H, W) -> ``logits`` (B, M), ``points`` (B, M, 2); batch,
height and width dynamic). Weights stored as float16 are widened to float32, as the torch loader does.
Building takes well under a second, so nothing is cached on disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from crowdwatch.errors import CheckpointError
from crowdwatch.model.arch import (
    C4_INDEX,
    HEAD_HIDDEN_LAYERS,
    NECK_CHANNELS,
    STRIDE,
    VGG16_LAYOUT,
)
from crowdwatch.model.meta import CheckpointMeta, check_state_shapes, meta_payload, parse_meta
from crowdwatch.model.ptfile import read_torch_file

__all__ = ["build_model", "parameter_shapes", "read_checkpoint_arrays"]

#: The exported graph's input and outputs (as :mod:`crowdwatch.model.export` names them).
INPUT_NAME = "images"
OUTPUT_NAMES = ("logits", "points")


def _backbone_convs() -> list[tuple[int, int, int]]:
    """(layer index in ``features``, in channels, out channels) of each backbone conv."""
    convs, index, channels = [], 0, 3
    for item in VGG16_LAYOUT:
        if item == "M":
            index += 1
        else:
            out = int(item)
            convs.append((index, channels, out))
            index, channels = index + 2, out  # the conv and its ReLU
    return convs


def parameter_shapes(num_candidates: int) -> dict[str, tuple[int, ...]]:
    """Every tensor of P2PNet's state dict with its shape: what ``P2PNet(num_candidates=n).state_dict()``
    holds, worked out without torch."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cin: int, cout: int, k: int) -> None:
        shapes[f"{name}.weight"] = (cout, cin, k, k)
        shapes[f"{name}.bias"] = (cout,)

    for index, cin, cout in _backbone_convs():
        conv(f"backbone.{index}", cin, cout, 3)
    conv("neck.lateral4", 512, NECK_CHANNELS, 1)
    conv("neck.lateral5", 512, NECK_CHANNELS, 1)
    conv("neck.smooth", NECK_CHANNELS, NECK_CHANNELS, 3)
    for head, out in (("regression", 2 * num_candidates), ("classification", num_candidates)):
        for layer in range(HEAD_HIDDEN_LAYERS):
            conv(f"{head}.body.{2 * layer}", NECK_CHANNELS, NECK_CHANNELS, 3)
        conv(f"{head}.output", NECK_CHANNELS, out, 3)
    return shapes


def read_checkpoint_arrays(path: Path) -> tuple[dict[str, np.ndarray], CheckpointMeta, str]:
    """A crowdwatch checkpoint's weights as float32 arrays, its metadata, and the file's sha256.

    Raises:
        CheckpointError: as :func:`crowdwatch.model.checkpoint.load_checkpoint` for the same file.
    """
    payload = read_torch_file(path)
    meta = parse_meta(path, payload)
    state = payload["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise CheckpointError(path, "'state_dict' is not a mapping of names to tensors", reason="corrupt")
    expected = parameter_shapes(meta.num_candidates)
    check_state_shapes(path, {k: tuple(v.shape) for k, v in state.items()}, expected, meta.num_candidates)
    weights = {key: np.ascontiguousarray(state[key], dtype=np.float32) for key in expected}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return weights, meta, digest


def build_model(weights: Mapping[str, np.ndarray], meta: CheckpointMeta, *, name: str = "p2pnet") -> Any:
    """P2PNet in OpenVINO ops (an ``openvino.Model``), from float32 ``weights`` keyed as P2PNet's state
    dict (:func:`parameter_shapes`). Needs the ``openvino`` package."""
    from openvino import Model, PartialShape, Type
    from openvino import opset13 as ops

    def conv(x: Any, key: str, *, relu: bool) -> Any:
        kernel = weights[f"{key}.weight"]
        pad = kernel.shape[-1] // 2
        y = ops.convolution(x, ops.constant(kernel), [1, 1], [pad, pad], [pad, pad], [1, 1])
        y = ops.add(y, ops.constant(weights[f"{key}.bias"].reshape(1, -1, 1, 1)))
        return ops.relu(y) if relu else y

    images = ops.parameter(PartialShape([-1, 3, -1, -1]), Type.f32, name=INPUT_NAME)
    images.output(0).get_tensor().set_names({INPUT_NAME})
    x, index, c4 = images.output(0), 0, None
    for item in VGG16_LAYOUT:
        if item == "M":
            x = ops.max_pool(x, [2, 2], [1, 1], [0, 0], [0, 0], [2, 2], rounding_type="floor").output(0)
            index += 1
        else:
            x = conv(x, f"backbone.{index}", relu=True)
            index += 2
        if index == C4_INDEX + 1:
            c4 = x
    assert c4 is not None  # C4_INDEX lies inside the layout
    # Neck: C5 laterally projected, upsampled x2 (nearest: output pixel i reads input pixel i // 2),
    # added to the projected C4, then smoothed.
    top_down = ops.interpolate(
        conv(x, "neck.lateral5", relu=False),
        ops.constant(np.array([2.0, 2.0], dtype=np.float32)),
        mode="nearest",
        shape_calculation_mode="scales",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
        axes=ops.constant(np.array([2, 3], dtype=np.int64)),
    )
    features = conv(ops.add(conv(c4, "neck.lateral4", relu=False), top_down), "neck.smooth", relu=False)

    def head(prefix: str) -> Any:
        y = features
        for layer in range(HEAD_HIDDEN_LAYERS):
            y = conv(y, f"{prefix}.body.{2 * layer}", relu=True)
        # (B, C, h, w) -> (B, h, w, C): each cell's candidates together, cells row-major.
        return ops.transpose(conv(y, f"{prefix}.output", relu=False), ops.constant(np.array([0, 2, 3, 1])))

    n = meta.num_candidates
    # (B, h, w, 2N) -> (B, h*w*N, 2): channel 2k is candidate k's x offset, 2k+1 its y, times the scale.
    offsets = ops.multiply(
        ops.reshape(
            head("regression"), ops.constant(np.array([0, -1, 2], dtype=np.int64)), special_zero=True
        ),
        ops.constant(np.float32(meta.regression_scale)),
    )
    # (B, h, w, N) -> (B, h*w*N)
    logits = ops.reshape(head("classification"), ops.constant(np.array([0, -1], dtype=np.int64)), True)
    points = ops.add(offsets, _cell_centres(ops, features, n))
    logits.output(0).get_tensor().set_names({OUTPUT_NAMES[0]})
    points.output(0).get_tensor().set_names({OUTPUT_NAMES[1]})
    model = Model([logits.output(0), points.output(0)], [images], name)
    return model


def _cell_centres(ops: Any, features: Any, n: int) -> Any:
    """(1, h*w*N, 2) centres (x, y) in input pixels of each candidate's cell, from the feature map's
    dynamic shape: cells row-major, then candidate k, as the heads' flattened outputs."""
    shape = ops.shape_of(features, output_type="i64")
    size = {}
    for axis, name in ((2, "h"), (3, "w")):
        size[name] = ops.gather(shape, ops.constant(np.int64(axis)), ops.constant(np.int64(0)))
    one = ops.constant(np.int64(1))

    def centres(count: Any) -> Any:
        cells = ops.convert(ops.range(ops.constant(np.int64(0)), count, one, "i64"), "f32")
        return ops.multiply(ops.add(cells, ops.constant(np.float32(0.5))), ops.constant(np.float32(STRIDE)))

    ys = ops.reshape(centres(size["h"]), ops.constant(np.array([-1, 1, 1, 1])), False)
    xs = ops.reshape(centres(size["w"]), ops.constant(np.array([1, -1, 1, 1])), False)
    grid = ops.concat(
        [ops.unsqueeze(size["h"], ops.constant(0)), ops.unsqueeze(size["w"], ops.constant(0)),
         ops.constant(np.array([n, 1], dtype=np.int64))],
        0,
    )  # fmt: skip
    xy = ops.concat([ops.broadcast(xs, grid), ops.broadcast(ys, grid)], 3)  # (h, w, N, 2)
    return ops.reshape(xy, ops.constant(np.array([1, -1, 2], dtype=np.int64)), False)


def build_from_checkpoint(path: Path) -> tuple[Any, dict[str, Any]]:
    """The checkpoint at ``path`` as an OpenVINO model and the metadata an exported model would carry
    (the checkpoint's, plus ``export`` naming the source file and its sha256)."""
    weights, meta, digest = read_checkpoint_arrays(path)
    metadata = {
        **meta_payload(meta),
        "export": {"format": "openvino", "precision": "fp32", "built_from": path.name, "sha256": digest},
    }
    return build_model(weights, meta), metadata
