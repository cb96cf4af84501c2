#!/usr/bin/env python3
"""Size a training run to a wall-clock budget on this machine (e.g. one call on a lent GPU machine).

Trains CONFIG for --calibrate steps in a scratch folder to measure the step rate here, then writes a
copy of CONFIG whose ``train.steps`` fits --minutes and whose ``train.lr_drop_step`` falls at
--drop-at of it. The copy's paths are absolute, so it can be read from anywhere, and an exact resume
of the sized run needs that copy (its steps are part of the run's config).

    scripts/size_run.py configs/train_gpu_continue.yaml --minutes 7.5 --out runs/gpu_plan.yaml
    python -m crowdwatch train runs/gpu_plan.yaml --out runs/gpu --max-minutes 7.5

Keep --max-minutes on the run as well: the rate measured in a short calibration can be optimistic.
With --rate STEPS_PER_S (measured by an earlier run on the same kind of machine) nothing is trained
here: the calibration's minute or more goes to the run itself.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

from crowdwatch.train.config import load_train_config
from crowdwatch.train.trainer import Trainer


def measure_rate(rows: list[dict[str, float]]) -> float:
    """Steps per second over the calibration, leaving out its first quarter (worker start, autotuning)."""
    first = rows[len(rows) // 4]
    last = rows[-1]
    seconds = last["elapsed_s"] - first["elapsed_s"]
    if seconds <= 0:
        raise SystemExit("the calibration steps took no measurable time; give --calibrate more steps")
    return (last["step"] - first["step"]) / seconds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--minutes", type=float, required=True, help="wall-clock budget of the run")
    parser.add_argument("--out", type=Path, required=True, help="where to write the sized config")
    parser.add_argument("--calibrate", type=int, default=200, help="steps to time (default 200)")
    parser.add_argument(
        "--rate", type=float, default=None, help="known steps/s on this machine: no calibration run"
    )
    parser.add_argument("--drop-at", type=float, default=0.75, help="lr drop, as a fraction of the steps")
    parser.add_argument(
        "--margin", type=float, default=0.95, help="fraction of the measured rate to plan with (checkpoints)"
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.calibrate < 4 or not 0 < args.drop_at < 1 or not 0 < args.margin <= 1:
        parser.error("need --minutes > 0, --calibrate >= 4, 0 < --drop-at < 1 and 0 < --margin <= 1")
    if args.rate is not None and not args.rate > 0:
        parser.error(f"--rate must be a positive number of steps per second, but got {args.rate}")
    config = load_train_config(args.config)
    if args.rate is None:
        probe = config.model_copy(
            update={"train": config.train.model_copy(update={"steps": args.calibrate, "lr_drop_step": None})}
        )
        with tempfile.TemporaryDirectory(prefix="size_run_") as scratch:
            rows = Trainer(probe, Path(scratch), resume=False).run(progress=False)
        rate, source = measure_rate(rows), f"measured over {args.calibrate} steps"
    else:
        rate, source = args.rate, "given (--rate)"
    floor = 1 if args.rate is not None else args.calibrate
    steps = max(floor, int(rate * args.minutes * 60 * args.margin))
    drop = max(1, round(steps * args.drop_at))
    sized = config.model_dump(mode="json")
    sized["train"].update(steps=steps, lr_drop_step=drop)
    header = (
        f"# {args.config} sized by scripts/size_run.py: {rate!r} steps/s {source}, "
        f"so {steps} steps fit {args.minutes:g} minutes (x{args.margin:g}); "
        f"lr drop at step {drop}\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + yaml.safe_dump(sized, sort_keys=False))
    print(f"{rate:.2f} steps/s: {steps} steps in {args.minutes:g} minutes, lr drop at {drop} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
