"""The evaluation overlays colour each point by the F1 matching: hits green, false positives red,
misses blue, with a legend."""

import numpy as np
from support.points import pts

from crowdwatch.evaluation import (
    FALSE_POSITIVE_COLOR,
    HIT_COLOR,
    MISS_COLOR,
    ImageResult,
    draw_overlay,
    scored,
)

# A hit 2 px from its head, a false positive 30 px from any head, and a head nobody found; the far
# prediction (10 px) is a miss at 8 px and a hit at 12 px.
RESULT = ImageResult(
    "a",
    "x.jpg",
    gt=pts((100, 300), (300, 300), (200, 380)),
    pred=pts((102, 300), (150, 330), (210, 380)),
    height=400,
)


def near(canvas, x, y, color, reach=1):
    """Whether a pixel within ``reach`` of (x, y) has exactly ``color`` (BGR)."""
    patch = canvas[y - reach : y + reach + 1, x - reach : x + reach + 1].reshape(-1, 3)
    return bool((patch == np.array(color, dtype=np.uint8)).all(axis=1).any())


def test_points_take_the_colour_of_their_match_at_the_radius():
    canvas = draw_overlay(np.zeros((400, 500, 3), np.uint8), RESULT, radius=8.0)
    assert near(canvas, 102, 300, HIT_COLOR)
    assert near(canvas, 150, 330, FALSE_POSITIVE_COLOR) and not near(canvas, 150, 330, HIT_COLOR, 3)
    assert near(canvas, 210, 380, FALSE_POSITIVE_COLOR)  # 10 px away: not a hit at 8 px
    assert near(canvas, 300 + 4, 300, MISS_COLOR) and not near(canvas, 100 + 4, 300, MISS_COLOR, 2)
    assert not near(canvas, 300, 300, MISS_COLOR)  # a ring: the head itself stays visible
    wider = draw_overlay(np.zeros((400, 500, 3), np.uint8), RESULT, radius=12.0)
    assert near(wider, 210, 380, HIT_COLOR) and not near(wider, 210, 380, FALSE_POSITIVE_COLOR)


def test_legend_names_each_colour_in_the_top_left_corner():
    canvas = draw_overlay(np.zeros((400, 500, 3), np.uint8), RESULT, radius=8.0)
    legend = canvas[:130, :300].reshape(-1, 3)
    for color in (HIT_COLOR, FALSE_POSITIVE_COLOR, MISS_COLOR):
        assert (legend == np.array(color, dtype=np.uint8)).all(axis=1).sum() > 20
    # the points' corner of the image is untouched by the legend
    assert not canvas[200:, 400:].any()


def test_an_unknown_height_is_taken_from_the_lowest_point():
    assert scored(RESULT).height == 400
    assert scored(ImageResult("a", "y", gt=pts((0, 10)), pred=pts((0, 49.5)))).height == 51
