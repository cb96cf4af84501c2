"""Evaluation metrics on hand-made predictions equal hand-computed values."""

import io
import math

import pytest
from support.points import pts

from crowdwatch.evaluation import (
    ImageResult,
    best_threshold,
    summarize,
    threshold_sweep,
    write_sweep_table,
)

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


def test_threshold_sweep_summarizes_each_threshold():
    # At 0.3 image "1" also keeps a far-off prediction and image "2" one at (5, 6); at 0.5 it is HAND_MADE.
    at_03 = [
        ImageResult("a", "1", gt=HAND_MADE[0].gt, pred=pts((3, 0), (10, 7), (50, 50), (90, 90))),
        ImageResult("a", "2", gt=HAND_MADE[1].gt, pred=pts((5, 6))),
        HAND_MADE[2],
    ]
    sweep = threshold_sweep({0.5: HAND_MADE, 0.3: at_03}, radii=(4.0, 8.0))
    assert list(sweep) == ["0.3", "0.5"]
    assert sweep["0.5"] == summarize(HAND_MADE, radii=(4.0, 8.0))
    # a summary already made at a threshold is reused as it is, the others are computed
    made = {"all": {"mae": -1.0}}
    reused = threshold_sweep({0.5: HAND_MADE, 0.3: at_03}, radii=(4.0, 8.0), summarized={0.5: made})
    assert reused["0.5"] is made and reused["0.3"] == sweep["0.3"]
    # counts 4 vs 2 and 1 vs 1: MAE 1, RMSE sqrt(2); 4 px: (3,0) and (5,6) match of 5 predictions, 3 truths
    assert sweep["0.3"]["a"]["mae"] == 1.0 and sweep["0.3"]["a"]["rmse"] == pytest.approx(math.sqrt(2))
    a4 = sweep["0.3"]["a"]["localization"]["4px"]
    assert (a4["tp"], a4["precision"], a4["recall"]) == (2, pytest.approx(2 / 5), pytest.approx(2 / 3))
    assert sweep["0.3"]["all"]["mae"] == pytest.approx(4 / 3)  # errors 2, 0 and 2


def test_best_threshold_is_the_lowest_all_image_mae_and_the_lowest_threshold_on_a_tie():
    def entry(mae):
        return {"all": {"mae": mae}}

    assert best_threshold({"0.3": entry(5.0), "0.4": entry(4.0), "0.5": entry(4.5)}) == "0.4"
    assert best_threshold({"0.5": entry(4.0), "0.45": entry(4.0), "0.6": entry(9.0)}) == "0.45"


def test_sweep_table_has_a_row_per_threshold_and_names_the_lowest():
    # At 0.6 image "1" loses its far-off prediction: errors 0, 1, 2; at 8 px 3 of 3 predictions match.
    at_06 = [ImageResult("a", "1", gt=HAND_MADE[0].gt, pred=pts((3, 0), (10, 7))), *HAND_MADE[1:]]
    sweep = threshold_sweep({0.5: HAND_MADE, 0.6: at_06}, radii=(4.0, 8.0))
    out = io.StringIO()
    write_sweep_table(out, sweep, best_threshold(sweep))
    lines = out.getvalue().splitlines()
    assert "F1@8px" in lines[0] and "lowest MAE over all images at 0.6" in lines[0]
    assert lines[1].split() == ["threshold", "all", "a", "b"]
    assert lines[2].split()[:4] == ["0.5", "1.33", "/", "0.600"]
    assert lines[3].split()[:4] == ["0.6", "1.00", "/", "0.667"]
