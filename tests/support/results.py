"""One builder for the worker's :class:`~crowdwatch.frames.Result`, so that a test names only what it
checks: the rest gets plain defaults (a 4x4 black frame, no points, capture at a fixed instant)."""

from __future__ import annotations

from typing import Any

import numpy as np

from crowdwatch.frames import Result

#: A fixed capture time (2023-11-14 22:13:20.5 UTC): tests never depend on today's date.
CAPTURED_AT = 1_700_000_000.5


def make_result(
    camera: str = "cam1",
    index: int = 0,
    *,
    points: Any = None,
    count: int | None = None,
    captured_at: float = CAPTURED_AT,
    image: np.ndarray | None = None,
    size: tuple[int, int] = (4, 4),
    latency_s: float = 0.1,
    **fields: Any,
) -> Result:
    """A Result of ``camera``. ``points`` (x, y pairs) default to ``count`` points at the origin (0 when
    neither is given) and ``count`` to their number; ``image`` to a black frame of ``size`` (height,
    width). Other fields (zone_counts, zone_alerts, smoothed_count, zone_smoothed, alert_events) pass
    through."""
    if points is None:
        points = np.zeros((count or 0, 2), np.float32)
    points = np.asarray(points, np.float32).reshape(-1, 2)
    return Result(
        camera=camera,
        index=index,
        captured_at=captured_at,
        image=np.zeros((*size, 3), np.uint8) if image is None else image,
        points=points,
        count=len(points) if count is None else count,
        latency_s=latency_s,
        **fields,
    )
