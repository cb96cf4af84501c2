"""Drawing head points, the count and zones on a frame (used by `crowdwatch count` and the overlay sink)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

POINT_COLOR = (0, 0, 255)  # BGR red
TEXT_COLOR = (255, 255, 255)
TEXT_BACKGROUND = (0, 0, 0)
ZONE_COLOR = (0, 200, 0)  # BGR green: a zone below its alert threshold (or without one)
ZONE_ALERT_COLOR = (0, 140, 255)  # BGR orange: a zone whose occupancy alert is raised
LINE_COLOR = (255, 200, 0)  # BGR cyan-blue: a counting line, its "in" arrow and its totals
TAIL_COLOR = (0, 220, 255)  # BGR yellow: the recent path of a tracked head
EXCLUDE_COLOR = (160, 160, 160)  # BGR grey: hatching and outline of an exclusion polygon
GRID_COLOR = (0, 255, 255)  # BGR yellow: the coordinate grid of `crowdwatch init`


Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (inclusive corners, as cv2.rectangle takes them)


def _label_style(height: int, width: int) -> tuple[float, int]:
    scale = max(0.4, min(height, width) / 600)
    return scale, max(1, round(scale * 2))


def count_label_rect(height: int, width: int, text: str) -> Rect:
    """Where :func:`draw_points` puts its label (top-left corner) on a ``height`` x ``width`` frame."""
    scale, thickness = _label_style(height, width)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    return 0, 0, tw + 8, th + base + 8


def count_text(count: int | None, label: str | None = None) -> str:
    return label if label is not None else f"count: {count}"


def draw_points(
    image: np.ndarray, points: np.ndarray, count: int | None = None, *, label: str | None = None
) -> np.ndarray:
    """A copy of ``image`` (BGR uint8) with a dot on each (x, y) point and the count in a corner."""
    out = image.copy()
    height, width = out.shape[:2]
    radius = max(2, round(min(height, width) / 200))
    for x, y in np.asarray(points, dtype=np.float32).reshape(-1, 2):
        cv2.circle(out, (round(float(x)), round(float(y))), radius, POINT_COLOR, -1, cv2.LINE_AA)
    if count is not None or label is not None:
        text = count_text(count, label)
        scale, thickness = _label_style(height, width)
        (_, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        x0, y0, x1, y1 = count_label_rect(height, width, text)
        cv2.rectangle(out, (x0, y0), (x1, y1), TEXT_BACKGROUND, -1)
        cv2.putText(
            out, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOR, thickness, cv2.LINE_AA
        )
    return out


def draw_zones(
    image: np.ndarray,
    zones: Sequence[tuple[str, np.ndarray]],
    counts: Mapping[str, int],
    alerts: Mapping[str, bool],
    *,
    keep_clear: Sequence[Rect] = (),
) -> np.ndarray:
    """Draw each zone's outline and "<id>: <count>" label on ``image`` in place, and return it.

    ``zones`` are (id, (N, 2) polygon in image pixels) pairs; a zone whose alert is raised is drawn in
    ``ZONE_ALERT_COLOR`` with "ALERT" in its label. Drawn before the points, so the dots stay on top.
    A label that would fall on one of the ``keep_clear`` rectangles (the total count's label, drawn
    later on top) moves down below it, so it stays readable.
    """
    height, width = image.shape[:2]
    thickness = max(1, round(min(height, width) / 300))
    scale = max(0.35, min(height, width) / 900)
    for zone_id, polygon in zones:
        alert = bool(alerts.get(zone_id, False))
        color = ZONE_ALERT_COLOR if alert else ZONE_COLOR
        contour = np.round(np.asarray(polygon, dtype=np.float32)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [contour], True, color, thickness, cv2.LINE_AA)
        text = f"{zone_id}: {counts.get(zone_id, 0)}" + (" ALERT" if alert else "")
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        # Label inside the frame, at the polygon's top-left corner.
        x = int(np.clip(contour[:, 0, 0].min() + thickness + 2, 0, max(0, width - tw - 4)))
        y = int(contour[:, 0, 1].min() + thickness + 2)
        for x0, y0, x1, y1 in keep_clear:
            if x < x1 and x + tw + 4 > x0 and y < y1 and y + th + base + 4 > y0:
                y = y1 + 2
        y = int(np.clip(y, 0, max(0, height - th - base - 4)))
        cv2.rectangle(image, (x, y), (x + tw + 4, y + th + base + 4), color, -1)
        cv2.putText(
            image, text, (x + 2, y + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_BACKGROUND, 1, cv2.LINE_AA
        )
    return image


def draw_exclusions(image: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """Hatch each exclusion polygon (diagonal grey lines, outline) on ``image`` in place, and return it.

    The lines are drawn on a copy and copied back only inside the polygons, so the hatching is clipped
    to them exactly; what lies under the hatching stays visible between the lines.
    """
    if not len(polygons):
        return image
    height, width = image.shape[:2]
    spacing = max(6, round(min(height, width) / 40))
    thickness = max(1, round(min(height, width) / 400))
    contours = [np.round(np.asarray(p, np.float32)).astype(np.int32).reshape(-1, 1, 2) for p in polygons]
    inside = np.zeros((height, width), np.uint8)
    cv2.fillPoly(inside, contours, 1)
    hatched = image.copy()
    for offset in range(-height, width, spacing):  # lines at 45 degrees: x - y = offset
        cv2.line(hatched, (offset, 0), (offset + height, height), EXCLUDE_COLOR, thickness, cv2.LINE_AA)
    image[inside > 0] = hatched[inside > 0]
    cv2.polylines(image, contours, True, EXCLUDE_COLOR, thickness + 1, cv2.LINE_AA)
    return image


def draw_annotations(
    image: np.ndarray,
    points: np.ndarray,
    count: int,
    zones: Sequence[tuple[str, np.ndarray]] = (),
    zone_counts: Mapping[str, int] | None = None,
    zone_alerts: Mapping[str, bool] | None = None,
    exclusions: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """A copy of the frame with its exclusions (hatched), zones, points and count drawn: zones first, so
    that the points and the total count stay on top, and zone labels placed clear of the count's label."""
    if len(exclusions):
        image = draw_exclusions(image.copy(), exclusions)
    if zones:
        height, width = image.shape[:2]
        count_rect = count_label_rect(height, width, count_text(count))
        image = draw_zones(image.copy(), zones, zone_counts or {}, zone_alerts or {}, keep_clear=[count_rect])
    return draw_points(image, points, count=count)


def draw_grid(image: np.ndarray, step: int | None = None) -> np.ndarray:
    """A copy of the frame with a labelled coordinate grid every ``step`` pixels (default: about ten
    lines across the longer side, rounded to 10, 20, 50, 100...), to read zone corners off."""
    height, width = image.shape[:2]
    if step is None:
        rough = max(width, height) / 10
        step = next(s for s in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000) if s >= rough)
    out = image.copy()
    scale, thickness = _label_style(height, width)
    scale *= 0.8
    (_, text_height), _ = cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    labels = [((x + 3, text_height + 3), str(x)) for x in range(0, width, step)]
    labels += [((3, y - 3), str(y)) for y in range(step, height, step)]
    for x in range(0, width, step):
        cv2.line(out, (x, 0), (x, height - 1), GRID_COLOR, 1)
    for y in range(step, height, step):
        cv2.line(out, (0, y), (width - 1, y), GRID_COLOR, 1)
    for origin, text in labels:  # a dark outline keeps the labels readable on any background
        cv2.putText(
            out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_BACKGROUND, thickness + 2, cv2.LINE_AA
        )
        cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, GRID_COLOR, thickness, cv2.LINE_AA)
    return out


def draw_tails(image: np.ndarray, tails: Sequence[Sequence[tuple[float, float]]]) -> np.ndarray:
    """Each track's recent positions as a thin polyline (in place)."""
    thickness = max(2, round(min(image.shape[:2]) / 360))
    paths = [
        np.round(np.asarray(t, np.float32)).astype(np.int32).reshape(-1, 1, 2) for t in tails if len(t) > 1
    ]
    if paths:
        cv2.polylines(image, paths, False, TAIL_COLOR, thickness, cv2.LINE_AA)
    return image


def draw_lines(
    image: np.ndarray,
    lines: Sequence[tuple[str, tuple[float, float], tuple[float, float], str, str]],
    totals: Mapping[str, tuple[int, int]],
) -> np.ndarray:
    """Counting lines (in place): ``(id, a, b, in name, out name)``, each with an arrow pointing the way
    its ``in`` crossings go and a label ``id: <in name> N / <out name> M`` (totals since the start)."""
    height, width = image.shape[:2]
    thickness = max(2, round(min(height, width) / 300))
    scale, label_thickness = _label_style(height, width)
    for line_id, a, b, in_name, out_name in lines:
        pa = (round(a[0]), round(a[1]))
        pb = (round(b[0]), round(b[1]))
        cv2.line(image, pa, pb, LINE_COLOR, thickness, cv2.LINE_AA)
        mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        length = max(1e-6, float(np.hypot(b[0] - a[0], b[1] - a[1])))
        # "in" goes from the left of a->b to its right: on the image (y down) that is (-dy, dx) / length
        nx, ny = -(b[1] - a[1]) / length, (b[0] - a[0]) / length
        arrow = 0.06 * min(height, width) + 10
        start = (round(mid[0] - nx * arrow), round(mid[1] - ny * arrow))
        end = (round(mid[0] + nx * arrow), round(mid[1] + ny * arrow))
        cv2.arrowedLine(image, start, end, LINE_COLOR, thickness, cv2.LINE_AA, tipLength=0.3)
        n_in, n_out = totals.get(line_id, (0, 0))
        text = f"{line_id}: {in_name} {n_in} / {out_name} {n_out}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, label_thickness)
        x = int(min(max(0, pa[0]), max(0, width - tw - 4)))
        y = int(min(max(th + 4, pa[1] - 6), height - base - 2))
        cv2.rectangle(image, (x, y - th - 4), (x + tw + 4, y + base), TEXT_BACKGROUND, -1)
        cv2.putText(
            image,
            text,
            (x + 2, y - 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            LINE_COLOR,
            label_thickness,
            cv2.LINE_AA,
        )
    return image
