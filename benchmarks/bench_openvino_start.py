"""How the openvino backend gets its network: built from the packaged checkpoint vs read from a shipped IR.

    python benchmarks/bench_openvino_start.py                 # the packaged weights, a 1280x720 frame
    python benchmarks/bench_openvino_start.py --runs 5 --size 1920x1080

Each run is a fresh process (imports and all, as a service's start), timing, as JSON: importing the
runtime, getting the network (option a: reading the ``.pt`` with crowdwatch's torch-free reader and
building the OpenVINO graph; option b: ``read_model`` of an exported IR), compiling it for one frame size,
and the first inference. Also the files each option adds: the IR (fp32, and fp16-compressed) against
the checkpoint already shipped. Needs the export extra (torch, onnx, openvino) to write the IR once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import openvino as ov
from crowdwatch.model.backends import OpenVINOBackend
t1 = time.perf_counter()
backend = OpenVINOBackend(sys.argv[1], precision="fp32")
t2 = time.perf_counter()
h, w = int(sys.argv[2]), int(sys.argv[3])
backend.compiled_for((1, 3, h, w))
t3 = time.perf_counter()
backend(np.zeros((1, 3, h, w), np.float32))
t4 = time.perf_counter()
times = {"import_s": t1 - t0, "network_s": t2 - t1, "compile_s": t3 - t2, "first_inference_s": t4 - t3}
print(json.dumps({**times, "torch_loaded": "torch" in sys.modules}))
"""


def run_child(model: Path, height: int, width: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(model), str(height), str(width)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the frame compiled for")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    height, width = -(-height // 16) * 16, -(-width // 16) * 16  # padded as the Predictor pads

    from crowdwatch.model.checkpoint import load_checkpoint
    from crowdwatch.model.export import export_metadata, export_onnx, onnx_to_openvino, save_ir
    from crowdwatch.weightsfile import PACKAGED_WEIGHTS

    with tempfile.TemporaryDirectory() as tmp:
        net, meta = load_checkpoint(PACKAGED_WEIGHTS)
        onnx_path = export_onnx(net, meta, Path(tmp) / "p2pnet.onnx")
        model = onnx_to_openvino(onnx_path)
        metadata = export_metadata(meta, format="openvino", precision="fp32")
        xml = save_ir(model, Path(tmp) / "p2pnet.xml", metadata)
        import openvino as ov

        ov.save_model(model, str(Path(tmp) / "p2pnet_fp16.xml"), compress_to_fp16=True)
        sizes = {
            "checkpoint_pt_bytes": PACKAGED_WEIGHTS.stat().st_size,
            "ir_fp32_bytes": xml.stat().st_size + xml.with_suffix(".bin").stat().st_size,
            "ir_fp16_bytes": sum((Path(tmp) / f"p2pnet_fp16.{s}").stat().st_size for s in ("xml", "bin")),
        }
        options = {"a_build_from_pt": PACKAGED_WEIGHTS, "b_read_ir": xml}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in options}
        for _ in range(args.runs):
            for name, path in options.items():
                runs[name].append(run_child(path, height, width))
    report: dict[str, object] = {"input": f"{width}x{height}", "runs": args.runs, **sizes}
    for name, results in runs.items():
        report[name] = {
            key: round(statistics.median(r[key] for r in results), 3)
            for key in results[0]
            if key != "torch_loaded"
        }
        report[name]["torch_loaded"] = any(r["torch_loaded"] for r in results)  # type: ignore[index]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
