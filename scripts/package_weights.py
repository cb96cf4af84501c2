"""Package a training run's checkpoint as shippable weights: fp16, its validated threshold, provenance.

    python scripts/package_weights.py runs/cpu_imagenet3/best.pt \
        --evaluation runs/evaluate/best/summary.json \
        --must-beat runs/evaluate/p2pnet_default/summary.json \
        --out crowdwatch/weights/p2pnet_default.pt

``--evaluation`` is the ``summary.json`` of ``crowdwatch evaluate --split val --sweep ...`` run on this
very checkpoint: the packaged threshold is the swept one with the lowest MAE over all validation images
(``threshold_lowest_mae``, or ``--threshold`` to pick another swept one), and the packaged provenance
records that evaluation at that threshold (MAE, RMSE, F1 per dataset), the mean-count baseline, the
chain of stages (``model.init_from``) with its total steps and wall time, and the machine.

``--must-beat`` is the ``summary.json`` of the weights to be replaced, evaluated on the same split: the
script refuses (exit 1, nothing written) unless the new weights have a lower MAE on every dataset, the
rule for shipping new default weights. Without it the script packages anything (for a site's own use).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from crowdwatch.model.backbone import sha256_file
from crowdwatch.model.checkpoint import load_checkpoint, save_checkpoint
from crowdwatch.model.precision import machine_description


def chain(provenance: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The stages that led to a checkpoint, first stage first, from its nested ``init_from`` provenance."""
    stages: list[dict[str, Any]] = []
    prov: Mapping[str, Any] | None = provenance
    while prov:
        stages.append(
            {
                "steps": prov.get("steps"),
                "wall_time_s": prov.get("wall_time_s"),
                "precision": prov.get("precision"),
                "machine": prov.get("machine"),
                "start": prov["init_from"]["path"] if "init_from" in prov else prov.get("backbone_init"),
            }
        )
        parent = prov.get("init_from")
        prov = parent.get("provenance") if isinstance(parent, Mapping) else None
    return stages[::-1]


def figures(entry: Mapping[str, Any]) -> dict[str, Any]:
    out = {"images": entry["images"], "mae": entry["mae"], "rmse": entry["rmse"]}
    for radius, loc in entry["localization"].items():
        out[f"f1_{radius}"] = loc["f1"]
    return out


def read_evaluation(path: Path) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: cannot read {path}: {exc}") from exc
    if report.get("split") != "val":
        raise SystemExit(f"error: {path} is not an evaluation on the validation split (--split val)")
    if report.get("longest_side") is not None:
        raise SystemExit(f"error: {path} shrank the images (--longest-side); evaluate at full resolution")
    return report


def at_threshold(report: Mapping[str, Any], threshold: str | None) -> tuple[str, dict[str, Any]]:
    """The chosen threshold and the per-dataset figures there (the sweep's, or the main report's)."""
    sweep = report.get("threshold_sweep", {})
    if threshold is None:
        threshold = report.get("threshold_lowest_mae") or f"{report['threshold']:g}"
    if threshold in sweep:
        return threshold, dict(sweep[threshold])
    if threshold == f"{report['threshold']:g}":
        return threshold, dict(report["datasets"])
    raise SystemExit(f"error: threshold {threshold} was not evaluated (swept: {', '.join(sweep) or 'none'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a crowdwatch checkpoint (a run's best.pt)")
    parser.add_argument("--evaluation", type=Path, required=True, help="evaluate's summary.json for it")
    parser.add_argument("--must-beat", type=Path, help="summary.json of the weights it replaces")
    parser.add_argument("--threshold", help="a swept threshold (default: the lowest all-image MAE)")
    parser.add_argument(
        "--threshold-reason", help="with --threshold: why that one, recorded in the provenance"
    )
    parser.add_argument(
        "--note", help="anything else the provenance should say (e.g. how the data travelled)"
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the packaged weights")
    args = parser.parse_args(argv)
    if args.threshold_reason and args.threshold is None:
        parser.error("--threshold-reason needs --threshold")

    report = read_evaluation(args.evaluation)
    if Path(report["weights"]).resolve() != args.checkpoint.resolve():
        raise SystemExit(f"error: {args.evaluation} evaluated {report['weights']}, not {args.checkpoint}")
    threshold, new = at_threshold(report, args.threshold)
    if args.must_beat is not None:
        old = read_evaluation(args.must_beat)["datasets"]  # the old weights at the threshold they ship with
        missing = {"mae": float("inf")}  # a dataset the new evaluation lacks is not better
        worse = [n for n in old if n != "all" and not new.get(n, missing)["mae"] < old[n]["mae"]]
        for name in sorted(old):
            mark = "" if name in worse or name == "all" else "  better"
            print(f"{name}: MAE {old[name]['mae']:.2f} -> {new.get(name, missing)['mae']:.2f}{mark}")
        if worse:
            print(f"not packaged: not better on {', '.join(worse)}", file=sys.stderr)
            return 1

    net, meta = load_checkpoint(args.checkpoint)
    stages = chain(meta.provenance)
    provenance = {
        **meta.provenance,
        "packaged": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "from": str(args.checkpoint),
            "from_sha256": sha256_file(args.checkpoint),
            "machine": machine_description(torch.device("cpu")),
            "stages": stages,
            "total_steps": sum(s["steps"] or 0 for s in stages),
            "total_wall_time_s": round(sum(s["wall_time_s"] or 0.0 for s in stages), 1),
            "threshold": float(threshold),
            "threshold_rule": "the swept threshold with the lowest count MAE over all validation images"
            if args.threshold is None
            else args.threshold_reason or "chosen by hand (--threshold)",
            "validation": {name: figures(entry) for name, entry in new.items()},
            "baseline_mean_count": report.get("baseline_mean_count", {}),
            "weights_stored_as": "float16",
            **({"note": args.note} if args.note else {}),
        },
    }
    save_checkpoint(args.out, net, threshold=float(threshold), provenance=provenance, half=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, threshold {threshold})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
