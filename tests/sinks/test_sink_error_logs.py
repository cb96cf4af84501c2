"""One policy for the log lines of a fault that lasts: the first at once, then once a minute, saying how
many were held back. The CSV sink on a real full disk (a 256 kB tmpfs) logged an ERROR on every flush,
every second, while the MQTT sink and the sink runner reported once a minute."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.results import make_result
from support.small_disk import fill

from crowdwatch.frames import Result
from crowdwatch.logthrottle import REPEAT_LOG_S, LogThrottle
from crowdwatch.sinks.csv import CsvSink

DAY = datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp()  # pinned: the test passes on any date


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def row(index: int) -> Result:
    return make_result("cam", index, captured_at=DAY + index, latency_s=0.0)


def test_throttle_logs_at_once_then_once_per_interval_with_the_count_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    throttle = LogThrottle(logging.getLogger("test.throttle"), interval_s=60.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.throttle"):
        logged = []
        for _ in range(150):  # one fault a second for 150 s
            logged.append(throttle.log("disk", logging.ERROR, "lost %d rows", 3))
            clock.now += 1.0
        throttle.reset("disk")
        assert throttle.log("disk", logging.ERROR, "lost %d rows", 4)  # a new fault: at once
        assert throttle.log("other", logging.WARNING, "another key")  # keys are independent
    assert [i for i, was in enumerate(logged) if was] == [0, 60, 120]
    assert [r.getMessage() for r in caplog.records] == [
        "lost 3 rows",
        "lost 3 rows (59 more since the last report)",
        "lost 3 rows (59 more since the last report)",
        "lost 4 rows",
        "another key",
    ]


def test_csv_sink_on_a_full_disk_logs_once_a_minute_and_says_when_it_writes_again(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    sink = CsvSink(small_disk, flush_interval_s=1.0, clock=clock, wall_clock=lambda: DAY)
    index = 0
    with caplog.at_level(logging.INFO, logger="crowdwatch.sinks.csv"), sink:
        filler = fill(small_disk)
        # the CSV's last page still takes some rows (tmpfs: whole pages)
        while sink.losses()["write_error"] == 0:
            sink.write(row(index))
            index += 1
            clock.now += 1.0
            sink.tick()
            assert index < 10_000, "the full disk never refused a row"
        failing_since = clock.now
        while clock.now - failing_since < 2 * REPEAT_LOG_S + 30:  # 150 s of failed flushes, one a second
            sink.write(row(index))
            index += 1
            clock.now += 1.0
            sink.tick()
        filler.unlink()
        sink.write(row(index))
        clock.now += 1.0
        sink.tick()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3, errors  # at 0, 60 and 120 s: was one per failed flush (150)
    assert all("No space left on device" in message for message in errors)
    assert "more since the last report" in errors[1]
    assert any("writing again" in r.getMessage() for r in caplog.records)
    assert sink.error is None
