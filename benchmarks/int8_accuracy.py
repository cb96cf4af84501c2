"""How far an exported model's counts and localization move from torch fp32 on the validation split.

    python benchmarks/int8_accuracy.py --model models/p2pnet_int8.xml --longest-side 512 \\
        ../shared/data/mall/train ../shared/data/shanghaitech/part_A_train \\
        ../shared/data/shanghaitech/part_B_train

The validation split is the training runs' (every ``--val-every``-th image of each folder). Prints, per
folder and over all: count MAE of the model against torch fp32 (absolute and % of torch's mean count),
and F1 at 8 px against the ground truth for both; as JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from crowdwatch.data.folders import read_folder, split_items
from crowdwatch.evaluation import predict_items, summarize
from crowdwatch.model.predictor import Predictor


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--model", type=Path, required=True, help="exported .xml or .onnx")
    parser.add_argument("--weights", type=Path, default=None, help="torch checkpoint (default: packaged)")
    parser.add_argument("--longest-side", type=int, default=None)
    parser.add_argument("--val-every", type=int, default=10)
    args = parser.parse_args(argv)
    items = []
    for folder in args.folders:
        items += split_items(read_folder(folder, dataset=folder.name), every=args.val_every, part="val")
    side = args.longest_side
    reference = Predictor.from_checkpoint(args.weights, device="cpu", precision="fp32", longest_side=side)
    exported = Predictor.from_checkpoint(args.model, backend="openvino", longest_side=side)
    ref, _ = predict_items(reference, items)
    got, _ = predict_items(exported, items)
    report = {"model": str(args.model), "precision": exported.precision, "longest_side": side, "datasets": {}}
    names = [*sorted({r.dataset for r in ref}), "all"]
    ref_summary, got_summary = summarize(ref, (8.0,)), summarize(got, (8.0,))
    for name in names:
        idx = [i for i, r in enumerate(ref) if name in ("all", r.dataset)]
        rc = np.array([len(ref[i].pred) for i in idx], dtype=float)
        gc = np.array([len(got[i].pred) for i in idx], dtype=float)
        mae = float(np.abs(gc - rc).mean())
        entry = {
            "images": len(idx),
            "mean_count_fp32": round(float(rc.mean()), 2),
            "count_mae_vs_fp32": round(mae, 3),
            "count_mae_percent": round(100 * mae / rc.mean(), 2) if rc.mean() else 0.0,
            "f1_8px_fp32": round(ref_summary[name]["localization"]["8px"]["f1"], 4),
            "f1_8px_model": round(got_summary[name]["localization"]["8px"]["f1"], 4),
        }
        report["datasets"][name] = entry
        print(
            f"{name}: {entry['images']} images, count MAE vs fp32 {mae:.2f} ({entry['count_mae_percent']}% "
            f"of {entry['mean_count_fp32']}), F1@8 {entry['f1_8px_fp32']} -> {entry['f1_8px_model']}"
        )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
