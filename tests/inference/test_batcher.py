"""The batcher's rules: full, waited, everyone waiting, one frame per camera, one size per batch."""

from __future__ import annotations

import time

import numpy as np
import pytest

from crowdwatch.frames import Frame
from crowdwatch.inference.batcher import Batcher


def frame(camera: str, index: int = 0, size: tuple[int, int] = (32, 48)) -> Frame:
    image = np.full((*size, 3), index % 256, np.uint8)
    return Frame(camera=camera, image=image, index=index, captured_at=time.time(), monotonic=time.monotonic())


def test_batch_closes_when_full() -> None:
    b = Batcher(max_batch=2, max_wait_s=1.0)
    b.add(frame("a"), 0.0)
    assert b.pop_ready(0.0) == []
    b.add(frame("b"), 0.0)
    b.add(frame("c"), 0.0)
    ready = b.pop_ready(0.0)
    assert [[f.camera for f in batch] for batch in ready] == [["a", "b"]]
    assert b.pending_cameras == {"c"}


def test_batch_closes_when_oldest_frame_waited_max_wait() -> None:
    b = Batcher(max_batch=4, max_wait_s=0.05)
    b.add(frame("a"), 10.0)
    b.add(frame("b"), 10.03)
    assert b.next_deadline() == pytest.approx(10.05)
    assert b.pop_ready(10.049) == []
    assert [[f.camera for f in batch] for batch in b.pop_ready(10.05)] == [["a", "b"]]
    assert b.next_deadline() is None and len(b) == 0


def test_one_frame_per_camera_newest_wins() -> None:
    b = Batcher(max_batch=4, max_wait_s=0.0)
    old, new = frame("a", 1), frame("a", 2)
    assert b.add(old, 0.0) is None
    assert b.add(new, 0.0) is old
    (batch,) = b.pop_ready(0.0)
    assert batch == [new]


def test_frames_of_different_sizes_never_share_a_batch() -> None:
    b = Batcher(max_batch=4, max_wait_s=0.0)
    for camera, size in [("a", (32, 48)), ("b", (64, 48)), ("c", (32, 48)), ("d", (64, 48))]:
        b.add(frame(camera, size=size), 0.0)
    batches = b.pop_ready(0.0)
    assert sorted(sorted(f.camera for f in batch) for batch in batches) == [["a", "c"], ["b", "d"]]
    for batch in batches:
        assert len({f.image.shape for f in batch}) == 1


def test_batch_closes_early_when_every_camera_is_waiting() -> None:
    b = Batcher(max_batch=4, max_wait_s=10.0, cameras=3)
    b.add(frame("a"), 0.0)
    b.add(frame("b"), 0.0)
    assert b.pop_ready(0.0) == []
    b.add(frame("c", size=(8, 8)), 0.0)
    assert sorted(len(batch) for batch in b.pop_ready(0.0)) == [1, 2]


def test_pop_all_splits_into_max_batch() -> None:
    b = Batcher(max_batch=2, max_wait_s=10.0)
    for camera in "abcde":
        b.add(frame(camera), 0.0)
    assert [len(batch) for batch in b.pop_all()] == [2, 2, 1]
