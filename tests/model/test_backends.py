"""Exported models (ONNX, OpenVINO IR) count like torch; bad exported models are clear errors.

The packaged weights are exported once per session (tests/support/exported_models.py); the real images
are shrunk to a longest side of 256 px to keep the three backends' runs short.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.exported_models import exported, needs_extra

from crowdwatch.data.folders import load_image
from crowdwatch.errors import CheckpointError, UsageError
from crowdwatch.model.checkpoint import load_checkpoint
from crowdwatch.model.postprocess import Prediction
from crowdwatch.model.predictor import Predictor
from crowdwatch.model.tiling import plan_tiles

__all__ = ["exported"]  # the session fixture, imported so pytest finds it here

pytestmark = [needs_extra, pytest.mark.data]

SIDE = 256


@pytest.fixture(scope="module")
def images(shared_data: Path) -> list[np.ndarray]:
    """Three real scenes of different sizes and aspects (a mall camera, a street, a dense crowd)."""
    return [
        load_image(shared_data / "mall/train/seq_000001.jpg"),
        load_image(shared_data / "shanghaitech/part_B_train/IMG_1.jpg"),
        load_image(shared_data / "shanghaitech/part_A_train/IMG_10.jpg"),
    ]


def test_onnx_file_is_checked_dynamic_and_carries_the_metadata(exported: dict[str, Path]) -> None:
    import onnx

    proto = onnx.load(str(exported["onnx"]))
    onnx.checker.check_model(proto, full_check=True)
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 17
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert [o.name for o in proto.graph.output] == ["logits", "points"]
    meta = json.loads(next(p.value for p in proto.metadata_props if p.key == "crowdwatch"))
    _, ckpt = load_checkpoint(exported["pt"])
    assert meta["arch"]["num_candidates"] == ckpt.num_candidates and meta["arch"]["stride"] == 8
    assert meta["default_threshold"] == ckpt.default_threshold
    assert meta["normalization"]["mean"] == list(ckpt.mean) and meta["provenance"] == ckpt.provenance
    assert meta["export"] == {"format": "onnx", "precision": "fp32", "opset": 18}


#: How far OpenVINO's fp32 scores may lie from torch's. Both run float32 convolutions, summed in other
#: orders: a few 1e-6 relative per layer (sqrt of the terms times float32's 6e-8), so the logits agree to
#: about 1e-4 and the sigmoid's slope (<= 1/4) keeps the scores closer still. 1e-3 leaves 10x margin.
SCORE_TOL = 1e-3


@pytest.fixture(scope="module")
def torch_fp32(exported: dict[str, Path], images: list[np.ndarray]) -> dict[str, list[Prediction]]:
    """torch fp32 on the images as one batch (padded to the largest, as the worker batches cameras)
    and on the first alone. Batched and single results differ slightly near the padded borders, for
    every backend alike, so each backend is compared with torch in the same arrangement.

    Each arrangement is also decoded at the threshold -/+ SCORE_TOL ("loose"/"strict"): a candidate
    scored within SCORE_TOL of the threshold may fall on either side of it on another backend or CPU,
    and only those may differ."""
    out: dict[str, list[Prediction]] = {}
    threshold = load_checkpoint(exported["pt"])[1].default_threshold
    for shift, suffix in ((0.0, ""), (-SCORE_TOL, "/loose"), (SCORE_TOL, "/strict")):
        predictor = Predictor.from_checkpoint(
            exported["pt"], device="cpu", precision="fp32", threshold=threshold + shift, longest_side=SIDE
        )
        out[f"batched{suffix}"] = predictor.predict(images)
        out[f"single{suffix}"] = predictor.predict(images[:1])
    return out


def nearest_distances(points: np.ndarray, to: np.ndarray) -> np.ndarray:
    """For each of ``points``, the distance to the nearest of ``to`` (inf where ``to`` is empty)."""
    if len(to) == 0:
        return np.full(len(points), np.inf)
    return np.sqrt(((points[:, None, :] - to[None, :, :]) ** 2).sum(-1)).min(axis=1)


@pytest.mark.parametrize("kind", ["xml", "onnx", "pt"])
def test_exported_fp32_gives_torch_fp32_points(
    exported: dict[str, Path], images: list[np.ndarray], torch_fp32: dict[str, list[Prediction]], kind: str
) -> None:
    predictor = Predictor.from_checkpoint(
        exported[kind], backend="openvino", precision="fp32", longest_side=SIDE
    )
    assert predictor.precision == "fp32" and predictor.backend.name == "openvino"
    assert predictor.meta == load_checkpoint(exported["pt"])[1]
    got = {"batched": predictor.predict(images), "single": predictor.predict(images[:1])}
    for arrangement, preds in got.items():
        for i, pred in enumerate(preds):
            want = torch_fp32[arrangement][i]
            loose, strict = torch_fp32[f"{arrangement}/loose"][i], torch_fp32[f"{arrangement}/strict"][i]
            assert want.count > 5  # real people found: the comparison is not between two empty sets
            # every point torch is sure of is found, and every point found is one torch scores at least
            # near the threshold; the same point to 0.05 px (offsets are float32 sums like the scores)
            assert strict.count <= pred.count <= loose.count, (strict.count, pred.count, loose.count)
            assert nearest_distances(strict.points, pred.points).max(initial=0) <= 0.05
            assert nearest_distances(pred.points, loose.points).max(initial=0) <= 0.05
            if pred.count == want.count:  # the usual case: no candidate that close to the threshold
                np.testing.assert_allclose(pred.points, want.points, atol=0.05, rtol=0)
                np.testing.assert_allclose(pred.scores, want.scores, atol=SCORE_TOL, rtol=0)


#: Built graph vs exported IR, both OpenVINO fp32 on this CPU: the same convolutions in other graph
#: forms, so sums in other orders at most; tests/model/test_ovgraph.py derives this bound (as a fraction
#: of the largest output).
RELATIVE_TOL = 1e-4


def test_network_built_from_the_checkpoint_is_the_exported_one(
    exported: dict[str, Path], images: list[np.ndarray]
) -> None:
    from crowdwatch.model.backends import OpenVINOBackend

    built = OpenVINOBackend(exported["pt"], precision="fp32")
    ir = OpenVINOBackend(exported["xml"], precision="fp32")
    assert built.meta == ir.meta == load_checkpoint(exported["pt"])[1]
    assert built.metadata["export"]["sha256"] and built.precision == ir.precision == "fp32"
    predictor = Predictor(ir, ir.meta, longest_side=SIDE)
    batch = predictor.preprocess.array([predictor.preprocess.resize(image)[0] for image in images])
    got, want = built(batch), ir(batch)
    for name in ("logits", "points"):
        scale = float(np.abs(want[name]).max())
        assert got[name].shape == want[name].shape
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=RELATIVE_TOL * scale)
    assert (want["logits"] > 0).sum() > 10  # real people found: confident candidates to compare


def test_new_frame_sizes_compile_once_each(exported: dict[str, Path]) -> None:
    predictor = Predictor.from_checkpoint(exported["xml"], backend="openvino")
    backend = predictor.backend
    frames = [np.full((h, w, 3), 90, np.uint8) for h, w in ((64, 96), (100, 60), (64, 96), (64, 96))]
    for frame in frames:
        predictor.predict([frame])
    predictor.predict(frames[:2])  # a batch of two: padded to 112x96
    assert sorted(backend._compiled) == [(1, 3, 64, 96), (1, 3, 112, 64), (2, 3, 112, 96)]  # type: ignore[attr-defined]  # the Backend protocol does not declare the cache


def test_openvino_is_given_the_same_tiles_as_torch(
    exported: dict[str, Path], images: list[np.ndarray]
) -> None:
    # Tiling happens in the Predictor, before any backend: OpenVINO sees only tiles within the budget,
    # and counts on them what torch counts on them (up to candidates within SCORE_TOL of the threshold).
    tiling = {"longest_side": 512, "tile_pixels": 256 * 256, "tile_margin": 64}
    predictor = Predictor.from_checkpoint(exported["xml"], backend="openvino", precision="fp32", **tiling)
    (got,) = predictor.predict(images[2:])
    resized = predictor.preprocess.geometry(*images[2].shape[:2]).resized_hw
    assert len(plan_tiles(*resized, tile_pixels=256 * 256, margin=64)) > 1
    shapes = list(predictor.backend._compiled)  # type: ignore[attr-defined]  # the Backend protocol does not declare the cache
    assert shapes and all(b * h * w <= 256 * 256 for b, _, h, w in shapes)
    reference = Predictor.from_checkpoint(exported["pt"], device="cpu", precision="fp32", **tiling)
    threshold = reference.threshold
    reference.threshold = threshold + SCORE_TOL
    (strict,) = reference.predict(images[2:])
    reference.threshold = threshold - SCORE_TOL
    (loose,) = reference.predict(images[2:])
    assert strict.count > 50 and strict.count <= got.count <= loose.count
    assert nearest_distances(strict.points, got.points).max(initial=0) <= 0.05


def _ir_without_metadata(xml: Path, out: Path) -> Path:
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    # The same graph in a new model: what another tool (or a hand conversion) writes, with no rt_info.
    stripped = ov.Model(model.outputs, model.get_parameters(), "stripped")
    assert not stripped.has_rt_info(["crowdwatch"])
    ov.save_model(stripped, str(out), compress_to_fp16=False)
    return out


def test_bad_exported_models_are_clear_errors(exported: dict[str, Path], tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.xml"
    corrupt.write_text("<net><layers>not an IR")
    corrupt.with_suffix(".bin").write_bytes(b"\0" * 16)
    no_bin = tmp_path / "nobin.xml"
    no_bin.write_text(exported["xml"].read_text())
    stripped = _ir_without_metadata(exported["xml"], tmp_path / "stripped.xml")
    notes = tmp_path / "notes.pt"
    notes.write_text("not a checkpoint")
    cases = [
        (tmp_path / "missing.xml", "no such file"),
        (tmp_path / "missing.pt", "no such file"),
        (notes, "not a torch.save zip file"),
        (corrupt, "is not a readable exported model"),
        (no_bin, "nobin.bin is missing"),
        (stripped, "carries no crowdwatch metadata"),
    ]
    for path, message in cases:
        with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
            Predictor.from_checkpoint(path, backend="openvino")
        assert info.value.exit_code == 2
    with pytest.raises(CheckpointError, match="--backend openvino"):
        Predictor.from_checkpoint(exported["xml"], backend="torch")
    with pytest.raises(UsageError, match="fp16 is for CUDA"):
        Predictor.from_checkpoint(exported["xml"], backend="openvino", precision="fp16")
