"""Evaluation metrics on hand-made predictions equal hand-computed values."""

import math

import pytest
from support.points import pts

from crowdwatch.evaluation import ImageResult, summarize, threshold_sweep

HAND_MADE = [
    # counts 3 vs 2; (3,0)-(0,0) is 3 px; (10,7)-(10,0) is 7 px; (50,50) is far from everything.
    ImageResult("a", "1", gt=pts((0, 0), (10, 0)), pred=pts((3, 0), (10, 7), (50, 50))),
    ImageResult("a", "2", gt=pts((5, 5)), pred=pts()),
    # one prediction close to three ground-truth points can match only one of them.
    ImageResult("b", "3", gt=pts((0, 0), (1, 0), (2, 0)), pred=pts((0.5, 0))),
]


def test_metrics_equal_hand_computed_values():
    s = summarize(HAND_MADE, radii=(4.0, 8.0))
    assert s["a"]["mae"] == 1.0 and s["a"]["rmse"] == 1.0
    assert s["b"]["mae"] == 2.0 and s["b"]["rmse"] == 2.0
    assert s["all"]["mae"] == pytest.approx(4 / 3) and s["all"]["rmse"] == pytest.approx(math.sqrt(2))
    a4, a8 = s["a"]["localization"]["4px"], s["a"]["localization"]["8px"]
    assert (a4["tp"], a4["precision"], a4["recall"], a4["f1"]) == (
        1,
        pytest.approx(1 / 3),
        pytest.approx(1 / 3),
        pytest.approx(1 / 3),
    )
    assert (a8["tp"], a8["precision"], a8["recall"]) == (2, pytest.approx(2 / 3), pytest.approx(2 / 3))
    b4 = s["b"]["localization"]["4px"]
    assert (b4["tp"], b4["precision"], b4["recall"], b4["f1"]) == (
        1,
        1.0,
        pytest.approx(1 / 3),
        pytest.approx(0.5),
    )
    all4, all8 = s["all"]["localization"]["4px"], s["all"]["localization"]["8px"]
    assert (all4["precision"], all4["recall"], all4["f1"]) == (0.5, pytest.approx(1 / 3), pytest.approx(0.4))
    assert (all8["precision"], all8["recall"], all8["f1"]) == (0.75, 0.5, pytest.approx(0.6))
    assert s["all"]["images"] == 3 and s["all"]["gt_total"] == 6 and s["all"]["pred_total"] == 4


def test_threshold_sweep_counts_per_threshold():
    # gt counts: 2, 1, 3; counts at thresholds 0.3 / 0.5: (4, 3), (1, 0), (3, 1)
    sweep = threshold_sweep(HAND_MADE, [0.3, 0.5], [[4, 3], [1, 0], [3, 1]])
    assert sweep["0.3"]["a"] == {"mae": 1.0, "rmse": pytest.approx(math.sqrt(2))}
    assert sweep["0.5"]["all"]["mae"] == pytest.approx(4 / 3) and sweep["0.3"]["b"]["mae"] == 0.0
