"""The sink runner: never blocks the caller, drains on stop, reports a failing sink once a minute, and
reads every sink's losses by reason."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from support.results import make_result

from crowdwatch.frames import Result
from crowdwatch.sinks.base import SinkBase
from crowdwatch.sinks.runner import SinkRunner


def result(index: int) -> Result:
    return make_result("a", index, captured_at=time.time(), latency_s=0.0)


class Recorder(SinkBase):
    def __init__(self) -> None:
        self.rows: list[Result] = []

    def write(self, result: Result) -> None:
        self.rows.append(result)


def test_submit_refuses_when_the_queue_is_full_without_blocking() -> None:
    runner = SinkRunner([Recorder()], queue_size=2)  # not started: nothing drains the queue
    started = time.monotonic()
    assert [runner.submit(result(i)) for i in range(3)] == [True, True, False]
    assert time.monotonic() - started < 0.1


def test_stop_lets_the_sinks_take_what_is_queued() -> None:
    sink = Recorder()
    runner = SinkRunner([sink])
    runner.start()
    for i in range(5):
        assert runner.submit(result(i))
    assert runner.stop(time.monotonic() + 5)
    assert [r.index for r in sink.rows] == list(range(5))


def test_a_failing_sink_is_reported_once_and_the_others_still_write(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(SinkBase):
        def write(self, result: Result) -> None:
            raise OSError("disk full")

    good = Recorder()
    runner = SinkRunner([Broken(), good])
    runner.start()
    for i in range(3):
        runner.submit(result(i))
    with caplog.at_level(logging.ERROR, logger="crowdwatch.sinks.runner"):
        assert runner.stop(time.monotonic() + 5)
    assert len(good.rows) == 3
    assert [r.message for r in caplog.records].count(
        "worker: sink Broken failed (reported once a minute)"
    ) == 1


def test_status_counts_each_sinks_losses_by_reason_until_the_sink_succeeds_again() -> None:
    class Flaky(SinkBase):
        """Raises on write while ``broken``."""

        broken = True

        def write(self, result: Result) -> None:
            if self.broken:
                raise OSError(28, "No space left on device")

    class Buffered(SinkBase):
        """Loses rows inside itself (like the CSV sink's failed flush) and says so."""

        LOSS_REASONS = ("write_error",)

        def write(self, result: Result) -> None:
            self.lose(2, "write_error", error="No space left on device")

    flaky, buffered = Flaky(), Buffered()
    runner = SinkRunner([flaky, buffered, Recorder()])
    assert [s.sink for s in runner.status()] == ["flaky", "buffered", "recorder"]
    assert [s.lost for s in runner.status()] == [
        {"raised": 0},
        {"write_error": 0, "raised": 0},
        {"raised": 0},
    ]
    runner.start()
    try:
        for i in range(3):
            assert runner.submit(result(i))
        wait = time.monotonic() + 5
        while [s.lost_total for s in runner.status()[:2]] != [3, 6] and time.monotonic() < wait:
            time.sleep(0.01)
        flaky_status, buffered_status, good = runner.status()
        assert (flaky_status.lost, flaky_status.error) == (
            {"raised": 3},
            "OSError: [Errno 28] No space left on device",
        )
        assert (buffered_status.lost, buffered_status.error) == (
            {"write_error": 6, "raised": 0},
            "No space left on device",
        )
        assert (good.lost_total, good.error) == (0, None)
        flaky.broken = False
        assert runner.submit(result(3))
    finally:
        assert runner.stop(time.monotonic() + 5)
    flaky_status = runner.status()[0]
    assert (flaky_status.lost, flaky_status.error) == (
        {"raised": 3},
        None,
    )  # recovered; the loss stays counted


def test_a_change_runs_on_the_sink_thread_after_every_result_queued_before_it() -> None:
    sink = Recorder()
    runner = SinkRunner([sink], queue_size=64)
    seen: list[tuple[int, str]] = []

    def change() -> None:
        seen.append((len(sink.rows), threading.current_thread().name))

    runner.start()
    try:
        for i in range(20):
            assert runner.submit(result(i))
        done = runner.run_in_order(change)
        for i in range(20, 25):
            assert runner.submit(result(i))
        assert done is not None and done.wait(5)
    finally:
        assert runner.stop(time.monotonic() + 5)
    assert seen == [(20, "sinks")]  # after the 20 results before it, before the 5 after it
    assert [r.index for r in sink.rows] == list(range(25))


def test_a_change_that_fails_is_logged_and_the_sinks_go_on(caplog: pytest.LogCaptureFixture) -> None:
    sink = Recorder()
    runner = SinkRunner([sink])

    def broken() -> None:
        raise ValueError("bad layout")

    runner.start()
    try:
        done = runner.run_in_order(broken)
        assert done is not None and done.wait(5)
        assert runner.submit(result(0))
    finally:
        assert runner.stop(time.monotonic() + 5)
    assert [r.index for r in sink.rows] == [0]
    assert "sinks: a config change failed" in caplog.text and "bad layout" in caplog.text
