"""The frame record that crosses threads: validated on construction, frozen."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from crowdwatch.frames import Frame

GOOD_IMAGE = np.zeros((4, 6, 3), np.uint8)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, None),
        ({"camera": ""}, "camera must be a non-empty str"),
        ({"image": GOOD_IMAGE[..., 0]}, "shape (H, W, 3)"),
        ({"image": np.zeros((0, 6, 3), np.uint8)}, "shape (H, W, 3)"),
        ({"image": GOOD_IMAGE.astype(np.float32)}, "dtype uint8"),
        ({"image": [[0, 0, 0]]}, "np.ndarray"),
        ({"index": -1}, "index must be an int >= 0"),
        ({"index": True}, "index must be an int >= 0"),
        ({"captured_at": float("nan")}, "captured_at must be a finite float"),
        ({"captured_at": 0.0}, "time.time()"),
        ({"monotonic": "now"}, "monotonic must be a finite float"),
    ],
)
def test_frame_is_validated(kwargs: dict[str, Any], error: str | None) -> None:
    fields = {"camera": "cam", "image": GOOD_IMAGE, "index": 0, "captured_at": time.time(), "monotonic": 1.0}
    fields.update(kwargs)
    if error is None:
        frame = Frame(**fields)
        assert (frame.height, frame.width) == (4, 6) and "cam" in repr(frame)
        with pytest.raises(AttributeError):
            frame.index = 2  # type: ignore[misc]  # assigning a frozen field is the point of the test
    else:
        with pytest.raises((ValueError, TypeError)) as info:
            Frame(**fields)
        assert error in str(info.value)
