"""Print the validation curve of one training run, or of stages chained by ``model.init_from``.

    python scripts/train_curve.py runs/cpu_imagenet runs/cpu_imagenet2:625

Each argument is a run directory (it holds ``log.csv``). ``DIR:STEP`` says that this stage started from
the previous stage's weights at step STEP: its steps and its wall time are counted on from that point,
so the table reads as one run (the steps the previous stage trained after STEP are left out of the
chain's figures, but its own rows up to its last step are still shown). Prints a Markdown table: the
step, the wall time in minutes (training plus the validations before that step), MAE over all
validation images and per dataset, where the log has them the probability mass and the count as
fractions of the true count (see crowdwatch.train.validate), and marks the row with the lowest MAE,
the checkpoint that the training keeps as ``best.pt``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Row:
    stage: int
    step: int  # counted through the chain
    minutes: float  # counted through the chain
    mae: float
    per_dataset: dict[str, float]
    mass: float | None  # probability mass / true count (logs written since these ratios exist)
    counted: float | None  # counted / true count


def parse_stage(arg: str) -> tuple[Path, int | None]:
    """``DIR`` or ``DIR:STEP``; a colon that is part of a path is kept when what follows is no number."""
    head, sep, tail = arg.rpartition(":")
    if sep and tail.isdigit():
        return Path(head), int(tail)
    return Path(arg), None


def read_log(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise SystemExit(f"error: {path} does not exist (is this a run directory?)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "val_mae" not in rows[0]:
        raise SystemExit(f"error: {path} is not a crowdwatch training log")
    return rows


def ratio(row: dict[str, str], key: str) -> float | None:
    """A ratio column's value; None where the log predates the column or the row has no validation."""
    return float(row[key]) if row.get(key) else None


def chain(stages: list[tuple[Path, int | None]]) -> list[Row]:
    out: list[Row] = []
    step_base, minutes_base = 0, 0.0
    previous: list[dict[str, str]] = []
    for index, (run, start) in enumerate(stages):
        rows = read_log(run / "log.csv")
        if index:
            if start is None:
                raise SystemExit(
                    f"error: {run}: say at which step of the previous stage it started (DIR:STEP)"
                )
            at = [r for r in previous if int(r["step"]) == start]
            if not at:
                raise SystemExit(f"error: the previous stage's log has no step {start}")
            step_base += start
            minutes_base += float(at[0]["elapsed_s"]) / 60
        datasets = [c.removeprefix("val_mae_") for c in rows[0] if c.startswith("val_mae_")]
        for r in rows:
            if not r["val_mae"]:
                continue
            out.append(
                Row(
                    stage=index + 1,
                    step=step_base + int(r["step"]),
                    minutes=minutes_base + float(r["elapsed_s"]) / 60,
                    mae=float(r["val_mae"]),
                    per_dataset={d: float(r[f"val_mae_{d}"]) for d in datasets if r[f"val_mae_{d}"]},
                    mass=ratio(r, "val_mass_ratio"),
                    counted=ratio(r, "val_counted_ratio"),
                )
            )
        previous = rows
    return out


def table(rows: list[Row]) -> str:
    if not rows:
        return "no validation rows yet\n"
    datasets = list(rows[0].per_dataset)
    best = min(rows, key=lambda r: r.mae)
    ratios = any(r.mass is not None for r in rows)
    extra = " mass / counted |" if ratios else ""
    lines = [
        "| stage | step | wall min | MAE all | " + " | ".join(datasets) + " |" + extra,
        "|---" * (4 + len(datasets) + ratios) + "|",
    ]
    for r in rows:
        mark = " (best)" if r is best else ""
        cells = " | ".join(f"{r.per_dataset.get(d, float('nan')):.2f}" for d in datasets)
        line = f"| {r.stage} | {r.step}{mark} | {r.minutes:.0f} | {r.mae:.2f} | {cells} |"
        if ratios:
            line += (
                f" {r.mass:.2f} / {r.counted:.2f} |" if r.mass is not None and r.counted is not None else " |"
            )
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="+", help="run directory, or DIR:STEP for a later stage")
    args = parser.parse_args(argv)
    sys.stdout.write(table(chain([parse_stage(s) for s in args.stages])))


if __name__ == "__main__":
    main()
