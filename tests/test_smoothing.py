"""The smoothed count: time-weighted mean over a window of capture times (step response, gaps, rates)."""

from __future__ import annotations

import pytest

from crowdwatch.smoothing import WindowMean

T0 = 1_000_000.0  # any epoch: only differences matter


def follow_time(window_s: float, fps: float, before: float = 10, after: float = 40) -> float:
    """Seconds from the first frame showing ``after`` until the smoothed count is within 1 of it."""
    smoother = WindowMean(window_s)
    t = T0
    for _ in range(int(3 * window_s * fps)):
        smoother.update(t, before)
        t += 1 / fps
    jump = t
    while smoother.update(t, after) < after - 1:
        t += 1 / fps
        assert t - jump < 3 * window_s, "never followed the jump"
    return t - jump


@pytest.mark.parametrize("window_s", [5.0, 10.0, 30.0])
def test_step_from_10_to_40_at_2_fps_is_followed_within_the_window(window_s: float) -> None:
    took = follow_time(window_s, fps=2)
    # Within 1 of 40 once 29/30 of the window lies after the jump; the first new frame counts for 0.5 s.
    assert window_s * 29 / 30 - 0.5 - 1e-9 <= took <= window_s


def test_step_response_does_not_depend_on_the_sampling_rate() -> None:
    assert follow_time(10, fps=2) == pytest.approx(follow_time(10, fps=5), abs=0.5)


def test_midway_through_the_window_the_value_is_the_time_weighted_mean() -> None:
    smoother = WindowMean(10)
    for i in range(40):
        smoother.update(T0 + i * 0.5, 10)  # 20 s of 10
    for i in range(40, 50):
        value = smoother.update(T0 + i * 0.5, 40)  # 5 s of 40
    assert value == pytest.approx(10 + 30 * 5 / 10)


def test_irregular_frames_weigh_by_time_not_by_number() -> None:
    smoother = WindowMean(10)
    smoother.update(T0, 0)
    for i in range(1, 11):  # a burst: 10 frames of 100 people within 1 s ...
        smoother.update(T0 + i * 0.1, 100)
    value = smoother.update(T0 + 10, 0)  # ... then one frame 9 s later, of 0 people
    assert value == pytest.approx(100 * 1 / 10)  # the burst held 1 s of the 10


def test_a_gap_longer_than_the_window_leaves_only_the_new_count() -> None:
    smoother = WindowMean(10)
    for i in range(20):
        smoother.update(T0 + i, 50)
    assert smoother.update(T0 + 19 + 60, 3) == 3  # frames dropped for a minute: no lag at all


def test_window_zero_is_the_raw_count_and_first_frame_is_itself() -> None:
    raw = WindowMean(0)
    assert [raw.update(T0 + i, v) for i, v in enumerate([5, 9, 1])] == [5, 9, 1]
    smoother = WindowMean(10)
    assert smoother.value is None
    assert smoother.update(T0, 7) == 7 and smoother.value == 7


def test_a_clock_stepping_back_restarts_the_window() -> None:
    smoother = WindowMean(10)
    for i in range(10):
        smoother.update(T0 + i, 30)
    assert smoother.update(T0 - 3600, 4) == 4
    assert smoother.update(T0 - 3599, 6) == pytest.approx(6)  # (4 held 0 s) the 1 s since holds 6


def test_same_capture_time_twice_keeps_the_mean_and_rejects_negative_windows() -> None:
    smoother = WindowMean(10)
    smoother.update(T0, 10)
    smoother.update(T0 + 1, 20)
    assert smoother.update(T0 + 1, 99) == pytest.approx(20)
    with pytest.raises(ValueError, match="window_s"):
        WindowMean(-1)
