"""The breakdown by head size, density and image third, on a hand-made scene with known bins."""

import io
import math

import numpy as np
import pytest
from support.points import pts

from crowdwatch.data.breakdown import (
    LABELS,
    Scored,
    bin_labels,
    breakdown,
    head_sizes,
    local_density,
    relative_radii,
    write_tables,
)

# Four small heads 5 px apart in the top third; two big lone heads in the bottom third of a 300 px image.
SMALL = [(10, 10), (15, 10), (10, 15), (15, 15)]
BIG = [(50, 250), (250, 250)]
SCENE = Scored(
    "a",
    gt=pts(*SMALL, *BIG),
    # the small heads found exactly; the first big head found 12 px off (a miss at 8 px, a hit at the
    # relative radius of 32 px); the second big head missed; a false positive in the middle third,
    # nearest to the first big head.
    pred=pts(*SMALL, (62, 250), (140, 140)),
    height=300,
)
UNDER = Scored("b", gt=pts((10, 10), (100, 10), (200, 10)), pred=pts((10, 10)), height=100)


def row(report, dataset, key, label):
    return report[dataset][f"by_{key}"][LABELS[key].index(label)]


def test_head_size_is_the_mean_distance_to_the_three_nearest_neighbours():
    square = pts((0, 0), (10, 0), (0, 10), (10, 10))
    assert head_sizes(square) == pytest.approx([(10 + 10 + math.sqrt(200)) / 3] * 4)
    assert head_sizes(pts((0, 0), (3, 4))) == pytest.approx([5.0, 5.0])  # fewer neighbours than 3
    assert head_sizes(pts((1, 1))).tolist() == [math.inf] and head_sizes(pts()).shape == (0,)
    # a head counts itself: alone in ~10,000 px² it is density 1
    assert local_density(pts((0, 0), (500, 500)), square) == pytest.approx([4.0, 0.0], abs=0.01)
    assert relative_radii(np.array([4.0, 30.0, 200.0]), 8.0).tolist() == [8.0, 15.0, 32.0]
    assert bin_labels((8, 16), " px") == ["<8 px", "8-16 px", ">=16 px"]


def test_bins_recall_and_precision_equal_hand_counted_values():
    report = breakdown([SCENE, UNDER], radius=8.0)
    small, big = row(report, "a", "size", "<8 px"), row(report, "a", "size", ">=64 px")
    assert (small["gt"], small["pred"], small["tp"], small["recall"], small["precision"]) == (4, 4, 4, 1, 1)
    assert (big["gt"], big["pred"], big["tp"], big["recall"], big["precision"]) == (2, 2, 0, 0.0, 0.0)
    assert (big["tp_relative"], big["recall_relative"], big["precision_relative"]) == (1, 0.5, 0.5)
    assert row(report, "a", "size", "16-32 px") | {"bin": None} == {
        "bin": None,
        "gt": 0,
        "pred": 0,
        "tp": 0,
        "recall": None,
        "precision": None,
        "pred_relative": 0,
        "tp_relative": 0,
        "recall_relative": None,
        "precision_relative": None,
    }
    crowded, lone = row(report, "a", "density", "2-5"), row(report, "a", "density", "<2")
    assert (crowded["gt"], crowded["tp"], lone["gt"], lone["pred"], lone["tp"]) == (4, 4, 2, 2, 0)
    top, middle, bottom = (row(report, "a", "region", r) for r in ("top", "middle", "bottom"))
    assert (top["gt"], top["pred"], top["tp"]) == (4, 4, 4)
    assert (middle["gt"], middle["pred"], middle["recall"], middle["precision"]) == (0, 1, None, 0.0)
    assert (bottom["gt"], bottom["pred"], bottom["tp"], bottom["tp_relative"]) == (2, 1, 0, 1)
    assert report["a"]["bias"] == {
        "images": 1,
        "mean_signed_error": 0.0,
        "mean_relative_error": 0.0,
        "under": 0,
        "over": 0,
        "exact": 1,
    }
    assert report["b"]["bias"]["mean_signed_error"] == -2.0 and report["b"]["bias"]["under"] == 1
    # "all" adds the datasets up: b's three spread-out heads (sizes 95-145 px) join the largest bin
    assert [r["gt"] for r in report["all"]["by_size"]] == [4, 0, 0, 0, 5]
    assert report["all"]["bias"]["mean_signed_error"] == -1.0
    text = io.StringIO()
    write_tables(text, report)
    assert "| head size | >=64 px | 2 | 2 | 0.000 | 0.000 | 0.500 | 0.500 |" in text.getvalue()
    assert "| image third | middle | 0 | 1 | - | 0.000 | - | 0.000 |" in text.getvalue()
    assert "| b | 1 | -2.00 | -66.7% | 1 | 0 | 0 |" in text.getvalue()


def test_predictions_in_an_image_without_heads_are_lone_false_positives():
    report = breakdown([Scored("a", gt=pts(), pred=pts((5, 5), (6, 90)), height=100)])
    big = row(report, "a", "size", ">=64 px")
    assert (big["gt"], big["pred"], big["precision"], big["recall"]) == (0, 2, 0.0, None)
    assert [r["pred"] for r in report["a"]["by_region"]] == [1, 0, 1]
    assert report["a"]["bias"]["over"] == 1
