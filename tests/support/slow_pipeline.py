"""``crowdwatch run`` with a model slower than the stop budget, for the stop tests. No tests live here.

    python tests/support/slow_pipeline.py CONFIG --predict-s 60 --stop-budget-s 2

The real pipeline and the real exit path (:func:`crowdwatch.commands.run.serve`), with one part
swapped through the Pipeline's constructor: the model. :class:`SlowModel` runs real torch convolutions
(C++ operators that release the GIL, as P2PNet's do) for ``--predict-s`` seconds per batch, so a
SIGTERM finds the worker thread inside torch and the stop budget runs out before the batch ends. It
logs ``slow model: inside the model`` when a batch starts, for the test to send its signal then.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from crowdwatch.cli import setup_logging
from crowdwatch.commands.run import serve
from crowdwatch.config import load_config
from crowdwatch.pipeline import Pipeline

logger = logging.getLogger("slow_model")

INSIDE_THE_MODEL = "slow model: inside the model"


@dataclass(frozen=True)
class NoPeople:
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    count: int = 0


class SlowModel:
    """Convolutions on a 64-channel 128x128 map (tens of ms each) until ``seconds`` have passed."""

    device = torch.device("cpu")
    precision = "fp32"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.features = torch.randn(1, 64, 128, 128)
        self.weight = torch.randn(64, 64, 3, 3)

    def predict(self, images: Sequence[np.ndarray]) -> list[NoPeople]:
        logger.info(INSIDE_THE_MODEL)
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            torch.nn.functional.conv2d(self.features, self.weight, padding=1)
        return [NoPeople() for _ in images]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--predict-s", type=float, default=60.0)
    parser.add_argument("--stop-budget-s", type=float, default=2.0)
    args = parser.parse_args()
    setup_logging()
    pipeline = Pipeline(
        load_config(args.config),
        model_factory=lambda: SlowModel(args.predict_s),
        stop_budget_s=args.stop_budget_s,
    )
    serve(pipeline)


if __name__ == "__main__":
    main()
