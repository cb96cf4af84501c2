"""A count smoothed over a time window of capture times: the time-weighted mean of the last ``window_s``.

Why this estimator: each frame's count stands for the time since the previous frame (a zero-order
hold, backwards), and the smoothed value is the mean of that step function over the last
``window_s`` seconds of capture time. Because the weights are durations, not frame counts:

- it follows a real change within one window: after a jump from 10 to 40, the value climbs linearly
  and equals 40 once the whole window lies after the jump (``window_s`` later, whatever the rate);
- dropped frames or a different sampling rate do not stretch it: a frame after a gap stands for the
  gap (clipped to the window), so after a gap longer than the window the value is the new count, and
  2 frames/s or 5 frames/s give the same curve for the same scene;
- a single-frame glitch moves it by at most ``glitch x frame interval / window_s``.

An exponential moving average with ``alpha = 1 - exp(-dt / tau)`` would also be rate-independent, but
it never reaches the new level (within 1 person of a 30-person jump only after 3.4 tau), and a
windowed median would jump in steps; the windowed mean reaches the new level exactly one window later
and its value is easy to explain ("the mean count of the last 10 seconds").

``window_s = 0`` turns smoothing off (the value is the latest count). A capture time that goes
backwards (a wall clock stepped back) starts the window afresh rather than mixing the two timelines.
Memory: one (time, count) pair per frame in the window (50 pairs at 5 frames/s and 10 s).
"""

from __future__ import annotations

from collections import deque

__all__ = ["WindowMean"]


class WindowMean:
    """Time-weighted mean of a count over the last ``window_s`` seconds of capture times."""

    def __init__(self, window_s: float) -> None:
        if window_s < 0:
            raise ValueError(f"window_s must be >= 0, but got {window_s}")
        self.window_s = float(window_s)
        # (start, end, value): value held over (start, end]; intervals contiguous, oldest first.
        self._intervals: deque[tuple[float, float, float]] = deque()
        self._area = 0.0  # sum of value * (end - start) over _intervals
        self._last_t: float | None = None
        self._last_value = 0.0

    @property
    def value(self) -> float | None:
        """The smoothed count after the latest update (None before the first)."""
        return None if self._last_t is None else self._mean()

    def update(self, t: float, value: float) -> float:
        """Add ``value`` captured at ``t`` (seconds, e.g. ``time.time()``) and return the smoothed count."""
        value = float(value)
        if self._last_t is None or t < self._last_t or self.window_s == 0:
            self._reset()
        elif t > self._last_t:
            start = max(self._last_t, t - self.window_s)
            self._intervals.append((start, t, value))
            self._area += value * (t - start)
        self._last_t, self._last_value = t, value
        self._trim(t - self.window_s)
        return self._mean()

    def _reset(self) -> None:
        self._intervals.clear()
        self._area = 0.0

    def _trim(self, cut: float) -> None:
        """Drop what lies before ``cut``; shorten the interval that straddles it."""
        while self._intervals and self._intervals[0][1] <= cut:
            start, end, value = self._intervals.popleft()
            self._area -= value * (end - start)
        if self._intervals and self._intervals[0][0] < cut:
            start, end, value = self._intervals[0]
            self._area -= value * (cut - start)
            self._intervals[0] = (cut, end, value)
        if not self._intervals:
            self._area = 0.0  # also clears float drift whenever the window empties

    def _mean(self) -> float:
        if not self._intervals:
            return self._last_value
        covered = self._intervals[-1][1] - self._intervals[0][0]
        return self._area / covered if covered > 0 else self._last_value
