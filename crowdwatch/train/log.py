"""The CSV log of a run's curves: one row per optimiser step, validation columns on validation steps."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from crowdwatch.fileio import write_atomic

TRAIN_COLUMNS = ["step", "loss", "loss_cls", "loss_point", "grad_norm", "lr", "lr_backbone", "elapsed_s"]


RATIOS = ("mass_ratio", "counted_ratio")  # see crowdwatch.train.validate


def columns(datasets: Sequence[str]) -> list[str]:
    cols = [*TRAIN_COLUMNS, "val_mae", "val_rmse", *(f"val_{r}" for r in RATIOS)]
    for name in datasets:
        cols += [f"val_mae_{name}", f"val_rmse_{name}", *(f"val_{r}_{name}" for r in RATIOS)]
    return cols


class CurveLog:
    """Appends rows to ``path``; on resume, rows after the resumed step are dropped first."""

    def __init__(self, path: Path, datasets: Sequence[str], *, resume_step: int | None) -> None:
        self.path = path
        self.columns = columns(datasets)
        kept: list[dict[str, str]] = []
        if resume_step is not None and path.is_file():
            with path.open(newline="") as f:
                kept = [row for row in csv.DictReader(f) if int(row["step"]) <= resume_step]
        # The kept rows replace the file in one atomic step: a crash here cannot lose the curves.
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, self.columns)
        writer.writeheader()
        writer.writerows({k: row.get(k, "") for k in self.columns} for row in kept)
        write_atomic(path, text.getvalue().encode())
        self._file = path.open("a", newline="")
        self._writer = csv.DictWriter(self._file, self.columns)

    def write(
        self, row: Mapping[str, float | int | str], val: Mapping[str, Mapping[str, float]] | None
    ) -> None:
        full = {k: _fmt(v) for k, v in row.items()}
        if val is not None:
            for name, metrics in val.items():
                suffix = "" if name == "all" else f"_{name}"
                for key in ("mae", "rmse", *RATIOS):
                    if key in metrics:  # a caller may log MAE and RMSE only
                        full[f"val_{key}{suffix}"] = _fmt(metrics[key])
        self._writer.writerow({k: full.get(k, "") for k in self.columns})
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _fmt(value: float | int | str) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)
