"""SinkBase's one account of losses: declared reasons from the start at 0, exact counts from many threads,
and no reason that was not declared."""

from __future__ import annotations

import threading

import pytest

from crowdwatch.sinks.base import RAISED, SinkBase


class Outbox(SinkBase):
    LOSS_REASONS = ("outbox_full", "shutdown")


def test_every_declared_reason_is_there_from_the_start_then_raised() -> None:
    assert Outbox().losses() == {"outbox_full": 0, "shutdown": 0, RAISED: 0}
    assert SinkBase().losses() == {RAISED: 0}


def test_losses_from_many_threads_add_up_exactly() -> None:
    sink = Outbox()
    start = threading.Barrier(8)

    def lose_many(reason: str) -> None:
        start.wait()
        for _ in range(5_000):
            sink.lose(1, reason)
        sink.lose(7, reason)

    threads = [
        threading.Thread(target=lose_many, args=("outbox_full" if i % 2 else "shutdown",)) for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sink.losses() == {"outbox_full": 4 * 5_007, "shutdown": 4 * 5_007, RAISED: 0}
    assert sink.error is None  # counted only: no loss here said the sink is failing


def test_a_loss_with_an_error_marks_the_sink_failing_until_it_clears_it() -> None:
    sink = Outbox()
    sink.lose(3, "shutdown", error="broker gone")
    assert sink.error == "broker gone"
    sink.error = None  # the sink succeeded again
    sink.lose(1, "shutdown")
    assert sink.error is None and sink.losses()["shutdown"] == 4


def test_a_reason_not_declared_or_a_negative_count_is_refused() -> None:
    sink = Outbox()
    with pytest.raises(ValueError, match="not 'write_error'"):
        sink.lose(1, "write_error")
    with pytest.raises(ValueError, match="count of records"):
        sink.lose(-1, "shutdown")
    assert sink.losses() == {"outbox_full": 0, "shutdown": 0, RAISED: 0}


def test_a_sink_cannot_declare_the_runners_reason_or_one_twice() -> None:
    with pytest.raises(TypeError, match="raised"):

        class Raising(SinkBase):
            LOSS_REASONS = (RAISED,)

    with pytest.raises(TypeError, match="distinct"):

        class Twice(SinkBase):
            LOSS_REASONS = ("a", "a")
