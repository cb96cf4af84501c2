"""Labels on snapshots stay readable: a zone's label never hides under the total count's label."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from crowdwatch.drawing import ZONE_ALERT_COLOR, draw_annotations, draw_points, draw_zones

ZONE = ("left-half", np.array([[0, 0], [320, 0], [320, 360], [0, 360]], np.float32))  # configs/demo.yaml


def visible_label_fraction(image: np.ndarray, polygon: np.ndarray, text: str) -> float:
    """Share of the zone label's filled box still showing: orange pixels off the outline, over the box."""
    height, width = image.shape[:2]
    orange = np.all(image == np.array(ZONE_ALERT_COLOR, np.uint8), axis=2)
    outline = np.zeros((height, width), np.uint8)
    thickness = max(1, round(min(height, width) / 300))
    contour = polygon.astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(outline, [contour], True, 1, thickness + 2)
    scale = max(0.35, min(height, width) / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    box_area = (tw + 4) * (th + base + 4)
    return float((orange & (outline == 0)).sum()) / box_area


@pytest.mark.parametrize(("height", "width"), [(360, 640), (480, 640), (1080, 1920)])
def test_an_alerting_zone_label_at_the_corner_is_not_hidden_by_the_count(height: int, width: int) -> None:
    frame = np.full((height, width, 3), 60, np.uint8)
    zone_id, polygon = ZONE
    out = draw_annotations(frame, np.zeros((0, 2)), 17, [ZONE], {zone_id: 13}, {zone_id: True})
    text = f"{zone_id}: 13 ALERT"
    # Most of the box shows (the text itself is drawn in black over it).
    assert visible_label_fraction(out, polygon, text) > 0.6
    # What the snapshot looked like before: the label drawn under the count's box.
    before = draw_points(
        draw_zones(frame.copy(), [ZONE], {zone_id: 13}, {zone_id: True}), np.zeros((0, 2)), 17
    )
    assert visible_label_fraction(before, polygon, text) < visible_label_fraction(out, polygon, text)


def test_a_label_away_from_the_count_stays_where_it_was() -> None:
    frame = np.full((360, 640, 3), 60, np.uint8)
    zone = ("right", np.array([[400, 100], [600, 100], [600, 300], [400, 300]], np.float32))
    with_count = draw_annotations(frame, np.zeros((0, 2)), 3, [zone], {"right": 1}, {"right": True})
    alone = draw_zones(frame.copy(), [zone], {"right": 1}, {"right": True})
    assert np.array_equal(with_count[90:, 390:], alone[90:, 390:])
